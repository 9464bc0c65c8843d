"""ceo_briefing_skill: the Monday-morning CEO briefing, a thin layer over the ``briefing`` package.

``generate_briefing`` reads (the Odoo server, the vault, the state store) and writes only the note
and its chart in Briefings/. ``cancel_subscription`` is a write the owner approves: there is no API
to cancel a subscription with, so it records the approved cancellation in
Accounting/Subscription_Cancellations.md, the owner's list to act on.
"""
from __future__ import annotations

import datetime as dt

from briefing import generate, last_full_week, week_of
from briefing import cancellations
from briefing.odoo import OdooFigures
from core.engine.skills import ActionContext, Skill
from core.errors import ValidationError
from core.state import StateStore
from core.vault import Vault

skill = Skill("ceo_briefing_skill")
DATE = r"^(\d{4}-\d{2}-\d{2})?$"  # empty: the default week


def _week(params: dict):  # noqa: ANN202 - a briefing.Week
    if not params.get("week"):
        return last_full_week(dt.date.today())
    try:
        return week_of(dt.date.fromisoformat(params["week"]))
    except ValueError:
        raise ValidationError(f"week: {params['week']!r} is not a date (YYYY-MM-DD)", field="week") from None


@skill.action(schema={"type": "object", "additionalProperties": False,
                      "properties": {"week": {"type": "string", "pattern": DATE,
                                              "description": "Any day of the week to brief (Monday to Sunday); "
                                                             "default: the last full week before today."}}},
              read_only=True, channel="local",
              description="Write the Monday briefing of a week (Briefings/<Monday>_Monday_Briefing.md and its "
                          "revenue chart) and return its path, the subscription findings, the stale sections "
                          "and the executive summary.")
def generate_briefing(params: dict, ctx: ActionContext) -> dict:
    vault = Vault(ctx.settings.vault_path)
    state = StateStore(ctx.settings.state_db)
    briefing = generate(vault, state, OdooFigures.for_settings(ctx.settings, state), _week(params))
    return briefing.result(vault)


@skill.action(schema={"type": "object", "additionalProperties": False,
                      "required": ["merchant", "monthly_amount", "reason"],
                      "properties": {"merchant": {"type": "string", "minLength": 1, "maxLength": 200},
                                     "monthly_amount": {"type": "number", "minimum": 0, "maximum": 10_000_000},
                                     "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
                                     "currency": {"type": "string", "maxLength": 8}}},
              channel="local",
              description="Record an approved subscription cancellation in Accounting/Subscription_Cancellations.md "
                          "(there is no API to cancel with: the owner cancels with the vendor).")
def cancel_subscription(params: dict, ctx: ActionContext) -> dict:
    # Vault-local like vault_skill's filing: it happens in a dry run too (nothing leaves the machine).
    return cancellations.record(Vault(ctx.settings.vault_path), ctx.settings.state_dir, merchant=params["merchant"],
                                monthly_amount=float(params["monthly_amount"]), reason=params["reason"],
                                currency=params.get("currency", ""), key=ctx.idempotency_key)


@skill.reconciler("cancel_subscription")
def cancel_subscription_reconcile(params: dict, ctx: ActionContext) -> dict | None:
    """Interrupted: recorded already when its row (with this approval's key) is in the file."""
    return cancellations.find(Vault(ctx.settings.vault_path), ctx.idempotency_key)
