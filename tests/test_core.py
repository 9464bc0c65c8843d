"""Unit tests of the kernel's pure parts: configuration, names, documents, policy, retry, executor."""
from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from pathlib import Path

import pytest

from core.config import Settings
from core.documents import Document, DocumentError, section
from core.errors import ConfigError, OutcomeUnknownError, RateLimitError, TransientError, ValidationError
from core.engine.executor import Executor
from core.approval.policy import ActionInfo, Policy, PolicySource, policy_from_markdown
from core.redact import REDACTED, redact, scrub
from core.retry import Backoff, retry_call
from core.engine.skills import ActionContext, Skill, SkillRegistry
from core.state import StateStore
from core.vault import OutsideVaultError, Vault, safe_name


# -- configuration ------------------------------------------------------------------------------------
def test_settings_defaults_are_the_embedded_safe_ones(tmp_path):
    s = Settings.from_env({}, load_dotenv_file=False)
    assert s.dry_run is True and s.mcp_host == "127.0.0.1" and s.max_iterations == 5
    assert s.mcp_ports == {"email": 8080, "browser": 8081, "odoo": 8082, "twitter": 8083, "meta": 8084}
    assert s.state_db == s.vault_path / ".state" / "state.db"


@pytest.mark.parametrize("env, variable", [
    ({"DRY_RUN": "maybe"}, "DRY_RUN"),
    ({"MAX_ITERATIONS": "many"}, "MAX_ITERATIONS"),
    ({"MAX_ITERATIONS": "0"}, "MAX_ITERATIONS"),
    ({"EMAIL_MCP_PORT": "70000"}, "EMAIL_MCP_PORT"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"RESCAN_SECONDS": "-1"}, "RESCAN_SECONDS"),
])
def test_invalid_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env, load_dotenv_file=False)


def test_dotenv_never_overrides_the_environment(tmp_path, monkeypatch):
    """Settings.from_env() reads the project's .env itself, and what the environment says wins."""
    import core.config
    (tmp_path / ".env").write_text("DRY_RUN=false\nLOG_LEVEL=DEBUG\n")
    monkeypatch.setattr(core.config, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("DRY_RUN", "true")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")  # recorded, so whatever .env sets is undone at the end
    monkeypatch.delenv("LOG_LEVEL")
    s = Settings.from_env()
    assert s.dry_run is True and s.log_level == "DEBUG"


# -- names and paths ----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("../../etc/passwd", "etc passwd"),
    ("Re: Invoice #42 / urgent", "Re_Invoice_42_urgent"),
    ("..", "file"),
    ("", "file"),
    ("a\x00b", "ab"),
])
def test_safe_name(raw, expected):
    assert safe_name(raw) == expected


def test_safe_name_limits_bytes_without_breaking_characters():
    name = safe_name("日本" * 100)
    assert len(name.encode()) <= 120 and name.encode().decode() == name


def test_vault_refuses_paths_outside(tmp_path):
    vault = Vault(tmp_path / "vault")
    vault.ensure_layout()
    with pytest.raises(OutsideVaultError):
        vault.write_atomic(tmp_path / "vault" / ".." / "escape.md", "x")
    os.symlink(tmp_path, tmp_path / "vault" / "Inbox" / "link")
    with pytest.raises(OutsideVaultError):
        vault.write_atomic(tmp_path / "vault" / "Inbox" / "link" / "x.md", "x")
    assert not (tmp_path / "escape.md").exists() and not (tmp_path / "x.md").exists()


def test_write_atomic_exclusive_and_claim(tmp_path):
    vault = Vault(tmp_path)
    vault.ensure_layout()
    target = vault.folder("Needs_Action") / "t.md"
    vault.write_atomic(target, "one", exclusive=True)
    with pytest.raises(FileExistsError):
        vault.write_atomic(target, "two", exclusive=True)
    assert target.read_text() == "one"
    assert [p.name for p in target.parent.iterdir()] == ["t.md"], "no temporary left behind"
    claimed = vault.claim(target, vault.folder("In_Progress", "a"))
    assert claimed is not None and vault.claim(target, vault.folder("In_Progress", "b")) is None


# -- documents ----------------------------------------------------------------------------------------
def test_document_round_trip_keeps_the_body():
    text = "---\nid: x\ntitle: 'a: b'\n---\n# Title\n\nBody with --- inside\n"
    doc = Document.parse(text)
    doc.meta["status"] = "done"
    again = Document.parse(doc.render())
    assert again.meta == {"id": "x", "title": "a: b", "status": "done"} and again.body == doc.body


def test_document_errors_are_precise():
    with pytest.raises(DocumentError, match="invalid at line"):
        Document.parse("---\nid: x\nbad: [\n---\n")
    with pytest.raises(DocumentError, match="not closed"):
        Document.parse("---\nid: x\n")
    with pytest.raises(DocumentError, match="UTF-8"):
        Document.from_bytes(b"---\nid: \xff\n---\n")


def test_message_section_keeps_headings_and_ends_at_the_last_footer():
    footer = "Move this file to Approved/"
    body = "# A\n## Message\nHello\n\n## Summary\nWe pay on Friday.\n\nMove this file to Approved/ to approve.\n"
    assert section(body, "Message", footer) == "Hello\n\n## Summary\nWe pay on Friday."
    quoted = "## Message\nMove this file to Approved/ is what I was told.\nBye\n\nMove this file to Approved/ ok\n"
    assert section(quoted, "Message", footer) == "Move this file to Approved/ is what I was told.\nBye"
    assert section("## Message\nno footer\n", "Message", footer) is None
    assert section("nothing", "Message", footer) is None


# -- policy -------------------------------------------------------------------------------------------
EMAIL = ActionInfo("gmail_skill", "send_email", read_only=False, channel="email", recipient_params=("to", "cc"))
PAY = ActionInfo("odoo_skill", "pay", read_only=False, channel="payment", irreversible=True, amount_param="amount")


def test_default_policy_approves_only_read_only_actions():
    policy = Policy()
    assert policy.decide(ActionInfo("s", "read", read_only=True), {}).auto
    decision = policy.decide(EMAIL, {"to": "a@b.c"})
    assert not decision.auto and "no rule" in decision.reason


def test_policy_rules_thresholds_contacts_quiet_hours_and_rate_limits():
    policy = policy_from_markdown("""
```yaml
policy:
  auto_approve:
    - {rule: known, skill: gmail_skill, action: send_email, known_contacts_only: true}
    - {rule: small-payments, skill: odoo_skill, action: pay, max_amount: 40}
  known_contacts: [Jane@Example.com]
  thresholds: {payment_approval_over: 50}
  quiet_hours: {start: "22:00", end: "07:00"}
  rate_limits_per_hour: {email: 1}
```
""")
    noon = dt.datetime(2026, 11, 24, 12, 0)
    slots = iter([True, False])
    assert policy.decide(EMAIL, {"to": "jane@example.com"}, now=noon, take_rate_slot=lambda c, n: next(slots)).auto
    limited = policy.decide(EMAIL, {"to": "jane@example.com"}, now=noon, take_rate_slot=lambda c, n: next(slots))
    assert not limited.auto and limited.rule == "rate-limit"
    assert "new contact" in policy.decide(EMAIL, {"to": "x@y.z"}, now=noon).reason
    sneaky = policy.decide(EMAIL, {"to": "Jane <jane@example.com>", "cc": "eve@evil.example"}, now=noon)
    assert not sneaky.auto and "eve@evil.example" in sneaky.reason
    assert policy.decide(EMAIL, {"to": "jane@example.com"}, now=dt.datetime(2026, 11, 24, 23, 0)).rule == "quiet-hours"
    assert policy.decide(PAY, {"amount": 30}, now=noon).auto
    assert policy.decide(PAY, {"amount": 45}, now=noon).rule == "small-payments"
    over = policy.decide(PAY, {"amount": 500}, now=noon)
    assert not over.auto and over.risk == "high" and over.rule == "payment-threshold"


def test_broken_handbook_keeps_the_last_good_policy(tmp_path):
    handbook = tmp_path / "Company_Handbook.md"
    handbook.write_text("```yaml\npolicy:\n  auto_approve:\n    - {skill: s, action: a}\n```\n")
    source = PolicySource(handbook)
    assert len(source.current().auto_approve) == 1
    handbook.write_text("```yaml\npolicy:\n  auto_approve: [unclosed\n```\n")
    os.utime(handbook, (1, 1))
    assert len(source.current().auto_approve) == 1 and "policy ignored" in source.error


@pytest.mark.parametrize("planning, where", [
    ("planning: [rule]", "planning[0] must be a mapping"),
    ("planning:\n  - {when: {type: email}, steps: [test_skill.record]}", "planning[0].steps[0]"),
    ("planning:\n  - {when: email, steps: [{skill: s, action: a}]}", "planning[0].when"),
    ("planning:\n  - {when: {type: email}}", "planning[0].steps must be a non-empty list"),
])
def test_broken_planning_rules_are_refused_when_read(planning, where):
    from core.approval.policy import PolicyError
    with pytest.raises(PolicyError, match=re.escape(where)):
        policy_from_markdown(f"```yaml\n{planning}\n```\n")


# -- secrets ------------------------------------------------------------------------------------------
def test_redaction():
    assert redact({"to": "a", "api_key": "k", "nested": [{"refresh_token": "r"}]}) == \
        {"to": "a", "api_key": REDACTED, "nested": [{"refresh_token": REDACTED}]}
    assert "abc123" not in scrub("failed: Bearer abc123 and secret s3cr3t", ["s3cr3t"])


# -- retry --------------------------------------------------------------------------------------------
def test_retry_honours_retry_after_and_gives_up():
    waits: list[float] = []
    calls = iter([RateLimitError("slow down", retry_after=7), TransientError("503"), "ok"])

    def flaky():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert retry_call(flaky, backoff=Backoff(base=1, attempts=3), sleep=waits.append) == "ok"
    assert waits[0] == 7 and 0.5 <= waits[1] <= 2
    with pytest.raises(TransientError):
        retry_call(lambda: (_ for _ in ()).throw(TransientError("down")), backoff=Backoff(attempts=2), sleep=waits.append)


def test_auth_errors_are_not_retried():
    from core.errors import AuthError
    calls = []

    def revoked():
        calls.append(1)
        raise AuthError("revoked")

    with pytest.raises(AuthError):
        retry_call(revoked, sleep=lambda s: None)
    assert len(calls) == 1


# -- executor: exactly once, whatever the outcome ------------------------------------------------------
def make_registry(outcomes: list, *, reconcile=None, irreversible=False, idempotent=False) -> tuple[SkillRegistry, list]:
    calls: list = []
    skill = Skill("s")

    @skill.action(schema={"type": "object"}, irreversible=irreversible, idempotent=idempotent)
    def act(params: dict, ctx: ActionContext):
        calls.append(ctx.idempotency_key)
        value = outcomes.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    if reconcile is not None:
        skill.reconciler("act")(reconcile)
    registry = SkillRegistry()
    registry.register(skill)
    return registry, calls


def test_executor_retries_transient_failures_then_succeeds_once(tmp_path):
    registry, calls = make_registry([TransientError("503"), {"id": 1}])
    ex = Executor(registry, StateStore(tmp_path / "s.db"), dry_run=False, sleep=lambda s: None)
    result = ex.run("s", "act", {}, key="k1", task_id="t", grant_id="g")
    assert result.outcome.success and result.attempts == 2 and calls == ["k1", "k1"]
    again = ex.run("s", "act", {}, key="k1", task_id="t", grant_id="g")
    assert again.outcome.data == {"id": 1} and calls == ["k1", "k1"], "a succeeded key never runs again"


def test_unknown_outcome_is_reconciled_not_resent(tmp_path):
    state = StateStore(tmp_path / "s.db")
    state.ledger_begin("k2", "s", "act")  # as if we crashed mid-action
    registry, calls = make_registry([{"sent": True}], reconcile=lambda p, ctx: {"found": ctx.idempotency_key})
    result = Executor(registry, state, dry_run=False).run("s", "act", {}, key="k2", task_id=None, grant_id=None)
    assert result.reconciled and result.outcome.data == {"found": "k2"} and calls == []


def test_unknown_outcome_without_proof_goes_back_to_the_owner(tmp_path):
    state = StateStore(tmp_path / "s.db")
    state.ledger_begin("k3", "s", "act")
    registry, calls = make_registry([{"paid": True}], reconcile=lambda p, ctx: None, irreversible=True)
    result = Executor(registry, state, dry_run=False).run("s", "act", {}, key="k3", task_id=None, grant_id=None)
    assert result.unknown and not result.outcome.success and calls == []
    assert state.ledger_get("k3")["status"] == "unknown"


def test_timeout_mid_action_is_reconciled_before_any_retry(tmp_path):
    registry, calls = make_registry([OutcomeUnknownError("timed out")], reconcile=lambda p, ctx: {"found": True})
    result = Executor(registry, StateStore(tmp_path / "s.db"), dry_run=False).run(
        "s", "act", {}, key="k4", task_id=None, grant_id=None)
    assert result.outcome.success and result.reconciled and calls == ["k4"]


def test_skill_validation_names_the_field(tmp_path):
    skill = Skill("v")

    @skill.action(schema={"type": "object", "required": ["to"], "properties": {"to": {"type": "string"}},
                          "additionalProperties": False})
    def send(params, ctx):
        return params

    with pytest.raises(ValidationError, match="approved"):
        skill.actions["send"].validate({"to": "a", "approved": True})
    with pytest.raises(ValidationError, match="'to' is a required property"):
        skill.actions["send"].validate({})


def test_broken_skill_is_reported_not_fatal(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "SKILL.md").write_text("---\nname: good\ndescription: ok\n---\n")
    (tmp_path / "good" / "good.py").write_text("from core.engine.skills import Skill\nskill = Skill('good')\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "SKILL.md").write_text("---\nname: bad\n---\n")
    (tmp_path / "bad" / "bad.py").write_text("raise RuntimeError('boom')\n")
    registry = SkillRegistry().discover(tmp_path)
    assert list(registry.skills) == ["good"] and "boom" in registry.load_errors["bad"]
    assert registry.skills["good"].description == "ok"


STORE_WRITER = """
import sys
from core.state import StateStore
store = StateStore(sys.argv[1])
sys.stdin.readline()  # start together
for n in range(int(sys.argv[3])):
    key = f"{sys.argv[2]}-{n}"
    store.ledger_begin(key, "test", "write")
    store.stage_item("src", key, "task-" + key)
    with store.transaction():
        store.ledger_finish(key, "succeeded", result={"n": n})
        store.finish_item("src", key)
"""


def test_state_store_survives_concurrent_processes(tmp_path):
    """Writers in several processes at once: no 'database is locked', no lost or half-done write."""
    import subprocess
    import sys
    db = tmp_path / "s.db"
    StateStore(db)
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    procs = [subprocess.Popen([sys.executable, "-c", STORE_WRITER, str(db), f"w{i}", "150"], stdin=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent, text=True)
             for i in range(3)]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    store = StateStore(db)
    rows = store.query("SELECT status, COUNT(*) AS n FROM ledger GROUP BY status")
    assert [(r["status"], r["n"]) for r in rows] == [("succeeded", 450)]
    assert store.query("SELECT COUNT(*) AS n FROM watcher_items WHERE status='done'")[0]["n"] == 450


def test_janitor_removes_only_stale_temporaries_of_our_folders(tmp_path):
    vault = Vault(tmp_path)
    vault.ensure_layout()
    (vault.root / "In_Progress" / "loop").mkdir()
    stale = [vault.root / "Plans" / ".tmp-1", vault.root / ".tmp-2", vault.root / "In_Progress" / "loop" / ".tmp-3"]
    fresh, owners = vault.root / "Plans" / ".tmp-4", vault.root / "Inbox" / ".tmp-5"
    for path in [*stale, fresh, owners]:
        path.write_text("x")
    for path in [*stale, owners]:
        os.utime(path, (1, 1))
    assert vault.remove_stale_temporaries() == 3
    assert not any(p.exists() for p in stale) and fresh.exists() and owners.exists()


def test_outbox_hands_out_due_items_and_retries_later(tmp_path):
    state = StateStore(tmp_path / "s.db")
    first = state.outbox_put("odoo.invoice", {"n": 1})
    state.outbox_put("odoo.invoice", {"n": 2}, delay=3600)
    assert [r["id"] for r in state.outbox_due("odoo.invoice")] == [first]
    state.outbox_retry_later(first, 3600, "Odoo is down")
    assert state.outbox_due("odoo.invoice") == []
    state.outbox_retry_later(first, -1, "again")
    [row] = state.outbox_due("odoo.invoice")
    assert row["attempts"] == 2 and row["last_error"] == "again"
    state.outbox_done(first)
    assert state.outbox_due("odoo.invoice") == []


@pytest.mark.parametrize("url, ok", [
    ("https://mycompany.odoo.com/", "https://mycompany.odoo.com"), ("http://127.0.0.1:8069", "http://127.0.0.1:8069"),
    ("http://127.5.0.1/x", "http://127.5.0.1/x"), ("http://[::1]:9", "http://[::1]:9"),
    ("http://api.localhost", "http://api.localhost"),
    ("http://odoo.example.com", None), ("https://user:s3cret@odoo.example.com", None),
    ("https://odoo.example.com/?token=s3cret", None), ("https://odoo.example.com/#s3cret", None),
    ("ftp://odoo.example.com", None), ("https://odoo.example.com:99999", None), ("not a url", None),
])
def test_a_base_url_setting_is_https_or_loopback_http_and_never_echoed(url, ok):
    from core.config import check_base_url
    if ok is not None:
        assert check_base_url(url, "SOME_URL", "https://example.com") == ok
        return
    with pytest.raises(ConfigError) as caught:
        check_base_url(url, "SOME_URL", "https://example.com")
    assert str(caught.value).startswith("SOME_URL ") and "s3cret" not in str(caught.value)
