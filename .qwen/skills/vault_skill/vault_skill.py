"""vault_skill: file dropped documents into the vault's folders (local; nothing leaves the machine)."""
from __future__ import annotations

import shutil
from pathlib import Path

from core.errors import NotFoundError, ValidationError
from core.engine.skills import ActionContext, Skill
from core.vault import Vault, safe_name

skill = Skill("vault_skill")
FOLDERS = ["Accounting", "Bank_Transactions", "Documents", "Briefings"]


def _vault(ctx: ActionContext) -> Vault:
    return Vault(ctx.settings.vault_path)


def _target(vault: Vault, params: dict) -> tuple[Path, Path]:
    source = vault.check_inside(vault.root / params["file"])
    if not source.is_file() or source.is_symlink():
        raise NotFoundError(f"{params['file']} is not a file in the vault")
    if vault.relative(source).split("/")[0] != "Attachments":
        raise ValidationError("file: only files under Attachments/ can be filed", field="file")
    name = safe_name(params.get("name") or source.name.split("__", 1)[-1])  # drop the "<task-id>__" prefix
    return source, vault.folder(params["folder"]) / name


@skill.action(
    schema={"type": "object", "additionalProperties": False, "required": ["file", "folder"],
            "properties": {"file": {"type": "string", "minLength": 1, "maxLength": 500},
                           "folder": {"enum": FOLDERS}, "name": {"type": "string", "maxLength": 200}}},
    description="Copy a stored attachment into a vault folder.", channel="local")
def file_document(params: dict, ctx: ActionContext) -> dict:
    # DRY_RUN keeps actions from leaving the machine; filing inside the owner's own vault does not
    # leave it, so it happens in a dry run too.
    vault = _vault(ctx)
    source, dest = _target(vault, params)
    dest.parent.mkdir(parents=True, exist_ok=True)
    final = dest if not dest.exists() else vault.free_name(dest.parent, dest.name)
    tmp = final.parent / f".tmp-{ctx.idempotency_key.replace('/', '_').replace('#', '_')}"
    shutil.copyfile(source, tmp)
    tmp.rename(final)
    return {"filed": vault.relative(final)}


@skill.reconciler("file_document")
def file_document_reconcile(params: dict, ctx: ActionContext) -> dict | None:
    # A copy is harmless to repeat; a second copy would only add "name-2", so say "not done" and
    # let it run again unless the exact destination already holds the same bytes.
    vault = _vault(ctx)
    source, dest = _target(vault, params)
    if dest.exists() and dest.stat().st_size == source.stat().st_size:
        return {"filed": vault.relative(dest)}
    return None


@skill.action(
    schema={"type": "object", "additionalProperties": False, "required": ["folder"],
            "properties": {"folder": {"enum": FOLDERS}}},
    description="List the files in a vault folder.", read_only=True)
def list_folder(params: dict, ctx: ActionContext) -> dict:
    folder = _vault(ctx).folder(params["folder"])
    return {"files": sorted(p.name for p in folder.glob("*") if p.is_file() and not p.name.startswith("."))}


@skill.action(
    schema={"type": "object", "additionalProperties": False, "properties": {"note": {"type": "string", "maxLength": 500}}},
    description="Record that the owner has done what a reminder asked (rotated a credential); nothing else.")
def acknowledge(params: dict, ctx: ActionContext) -> dict:
    return {"acknowledged": True, "note": params.get("note", "")}
