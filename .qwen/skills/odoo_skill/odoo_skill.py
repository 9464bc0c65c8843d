"""odoo_skill: the books through the Odoo MCP server, and bank files read into the suite's records.

Write schemas are the server's tool input schemas, checked in beside this file (tools.schema.json,
pinned to the server by a test), so a plan that validates here is a call the server accepts and the
engine never loads the server's code.
"""
from __future__ import annotations

from decimal import Decimal

from core.approval.policy import PolicySource
from core.engine.mcp_client import McpClient, granted_write
from core.engine.skills import ActionContext, Skill, tool_schemas
from core.errors import NotConfiguredError, NotFoundError, TransientError, ValidationError
from core.state import StateStore
from core.vault import Vault
from odoo_integration.bank_files import parse_bank_file
from odoo_integration.bank_store import store_transactions
from odoo_integration.invoice_requests import read_request
from odoo_integration.matching import match_payments

skill = Skill("odoo_skill")
SCHEMAS = tool_schemas(__file__)


def _client(ctx: ActionContext) -> McpClient:
    return McpClient.for_service(ctx.settings, "odoo")


def _write(path: str, params: dict, ctx: ActionContext) -> dict:
    return granted_write(ctx, "odoo", path, params)


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["text"],
                      "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 100_000}}},
              read_only=True, channel="accounting",
              description="Read an invoice request and check the customer with Odoo.")
def read_invoice_request(params: dict, ctx: ActionContext) -> dict:
    request = read_request(params["text"], reference=f"AIE-{ctx.task_id}")
    partner = request["invoice"]["partner"]
    key = "email" if "@" in partner else "name"
    found = _client(ctx).get("/partners", {key: partner})["partners"]
    if not found:
        raise ValidationError(f"Odoo knows no customer {partner!r}: add them in Odoo (or correct the name in the "
                              "request), then retry the task; nothing was drafted", field="text")
    if len(found) > 1:
        raise ValidationError(f"{len(found)} contacts in Odoo are called {partner!r}: write the customer's email "
                              "in the request, then retry the task; nothing was drafted", field="text")
    request["invoice"]["partner"] = found[0]["email"] or found[0]["name"]
    request["customer"] = found[0]["name"]
    return request


@skill.action(schema=SCHEMAS["create_invoice"], channel="accounting", recipient_params=("partner",),
              recipient_kind="name", idempotent=True, description="Create one draft customer invoice in Odoo.")
def create_invoice(params: dict, ctx: ActionContext) -> dict:
    return _write("/invoices/create", params, ctx)


@skill.action(schema=SCHEMAS["sync_invoices"], channel="accounting", idempotent=True,
              description="Have these invoices in Odoo as drafts (by reference).")
def sync_invoices(params: dict, ctx: ActionContext) -> dict:
    return _write("/invoices/sync", params, ctx)


@skill.action(schema=SCHEMAS["post_invoice"], channel="accounting", idempotent=True,
              description="Post (confirm) a draft invoice in Odoo.")
def post_invoice(params: dict, ctx: ActionContext) -> dict:
    return _write("/invoices/post", params, ctx)


@skill.action(schema=SCHEMAS["register_payment"], channel="payment", irreversible=True, amount_param="amount",
              idempotent=True, description="Record a payment received against a posted invoice.")
def register_payment(params: dict, ctx: ActionContext) -> dict:
    return _write("/payments/register", params, ctx)


@skill.action(schema={"type": "object", "additionalProperties": False,
                      "properties": {"partner": {"type": "string"}, "as_of": {"type": "string", "format": "date"}}},
              read_only=True, channel="accounting", description="What customers owe, with ageing.")
def get_outstanding_invoices(params: dict, ctx: ActionContext) -> dict:
    return _client(ctx).get("/financial/outstanding", params)


@skill.action(schema={"type": "object", "additionalProperties": False,
                      "properties": {"months": {"type": "integer", "minimum": 1, "maximum": 36}}},
              read_only=True, channel="accounting", description="Revenue by month.")
def get_monthly_revenue(params: dict, ctx: ActionContext) -> dict:
    return _client(ctx).get("/financial/monthly-revenue", params)


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["file"],
                      "properties": {"file": {"type": "string", "minLength": 1, "maxLength": 500}}},
              read_only=True, channel="accounting",
              description="Read a bank export into the bank records and match new payments to open invoices.")
def import_bank_file(params: dict, ctx: ActionContext) -> dict:
    vault = Vault(ctx.settings.vault_path)
    path = vault.check_inside(vault.root / params["file"])
    if not path.is_file() or path.is_symlink():
        raise NotFoundError(f"{params['file']} is not a file in the vault")
    formats = PolicySource(vault.root / "Company_Handbook.md").current().bank_formats  # the owner's own banks
    parsed = parse_bank_file(path.read_bytes(), path.name.split("__", 1)[-1], mapping=list(formats) or None)
    state = StateStore(ctx.settings.state_db)
    fresh, duplicates = store_transactions(state, parsed.transactions)  # only what this export adds is matched
    result = {"format": parsed.format, "preset": parsed.preset, "transactions": len(parsed.transactions),
              "new": len(fresh), "duplicates": duplicates, "warnings": parsed.warnings[:20], "matches": [], "ambiguous": 0}
    if not any(tx.amount > 0 for tx in fresh):
        return result
    try:
        owed = _client(ctx).get("/financial/outstanding")
    except (NotConfiguredError, TransientError) as err:  # the records are kept; matching waits for Odoo
        return result | {"note": f"no matches proposed: {err}"}
    invoices = [{"id": i["number"], "number": i["number"], "partner": i["partner"], "partner_id": i["partner"],
                 "amount_residual": Decimal(str(i["amount_residual"])), "currency": i["currency"], "ref": "",
                 "invoice_date": i["invoice_date"], "due_date": i["due_date"]}
                for i in owed["invoices"] if i.get("number") and i["amount_residual"] > 0]
    matched = match_payments(fresh, invoices)
    by_key = {tx.key: tx for tx in fresh}
    result["matches"] = [{"invoice": m.invoice_number, "amount": float(m.amount),
                          "date": by_key[m.transaction_key].date.isoformat(),
                          "counterparty": by_key[m.transaction_key].counterparty or
                          by_key[m.transaction_key].description[:60],
                          "reasons": "; ".join(m.reasons), "score": m.score} for m in matched.proposals]
    result["ambiguous"] = len(matched.ambiguous)
    return result

