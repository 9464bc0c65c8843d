"""The Odoo MCP server (ODOO_MCP_PORT, default 8082): the books, read and (with approval) written.

    python -m odoo_integration.mcp_server          # PM2 app `mcp-odoo`

Reads (financial records, outstanding invoices, monthly revenue, partners) are computed in Odoo and
kept: while Odoo is down they answer from the last figures, marked ``stale`` with ``as_of``. Writes
(create, sync and post invoices, register payments) are behind the approval gate, exactly once
through the base's ledger (an invoice is found again by its reference, a payment by its memo), and
wait in the outbox while Odoo is down. Everything else is the builder's (mcp_servers.server).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.approval.gate import SkillBinding
from mcp_servers.server import Deps, Vertical, build_app as build_server, main as serve
from mcp_servers.tools import NEEDS_APPROVAL, Tool, ToolContext
from odoo_integration import accounting, sync_invoices as books
from odoo_integration.config import OdooConfig
from odoo_integration.connector import OdooConnector
from odoo_integration.mcp_schema import (INVOICE_SCHEMA, OUTSTANDING_SCHEMA, PARTNERS_SCHEMA, PAYMENT_SCHEMA,
                                         POSTED_SCHEMA, RECORDS_SCHEMA, REVENUE_SCHEMA, SYNC_SCHEMA,
                                         CreateInvoiceInput, FinancialRecordsInput, FindPartnersInput,
                                         MonthlyRevenueInput, OutstandingInput, PostInvoiceInput,
                                         RegisterPaymentInput, SyncInvoicesInput)
from odoo_integration.update_dashboard_with_odoo import refresh

# Approved writes are carried out by odoo_skill, action by action.
SKILLS = {action: SkillBinding("odoo_skill") for action in
          ("create_invoice", "sync_invoices", "post_invoice", "register_payment")}


@dataclass
class Books:
    odoo: OdooConnector
    today: Callable[[], dt.date] = dt.date.today  # the day ageing and "this month" are counted to
    info: dict[str, Any] = field(default_factory=dict)  # version and transport, from the last probe


def connect(deps: Deps, *, odoo: OdooConnector | None = None, today: Callable[[], dt.date] | None = None) -> Books:
    return Books(odoo or OdooConnector(OdooConfig.from_env(deps.settings.env)), today or dt.date.today)


def probe(books: Books) -> None:
    books.info = books.odoo.probe()


def _books(ctx: ToolContext) -> OdooConnector:
    return ctx.resources.odoo


async def get_financial_records(ctx: ToolContext, args: FinancialRecordsInput) -> dict:
    return await asyncio.to_thread(accounting.records, _books(ctx), kind=args.kind, state=args.state,
                                   partner=args.partner, date_from=args.date_from, date_to=args.date_to,
                                   limit=args.limit, offset=args.offset)


async def get_outstanding_invoices(ctx: ToolContext, args: OutstandingInput) -> dict:
    return await asyncio.to_thread(accounting.outstanding, _books(ctx), partner=args.partner,
                                   as_of=args.as_of or ctx.resources.today())


async def get_monthly_revenue(ctx: ToolContext, args: MonthlyRevenueInput) -> dict:
    return await asyncio.to_thread(accounting.monthly_revenue, _books(ctx), months=args.months,
                                   today=ctx.resources.today())


async def find_partners(ctx: ToolContext, args: FindPartnersInput) -> dict:
    found = await asyncio.to_thread(_books(ctx).find_partners, email=args.email, name=args.name)
    return {"partners": [{"id": p["id"], "name": p["name"], "email": p.get("email") or None,
                          "customer": bool(p.get("customer_rank"))} for p in found]}


def _invoice(args: Any) -> dict:
    return args.model_dump(mode="json", exclude={"grant_id", "task_id"}, exclude_none=True)


async def create_invoice(ctx: ToolContext, args: CreateInvoiceInput) -> dict:
    return await asyncio.to_thread(books.create_invoice, _books(ctx), _invoice(args))


async def invoice_with_reference(ctx: ToolContext, args: CreateInvoiceInput) -> dict | None:
    return await asyncio.to_thread(books.existing, _books(ctx), args.reference)


async def sync_invoices(ctx: ToolContext, args: SyncInvoicesInput) -> dict:
    return await asyncio.to_thread(books.sync_invoices, _books(ctx), [_invoice(i) for i in args.invoices])


async def sync_again(ctx: ToolContext, args: SyncInvoicesInput) -> dict | None:
    """Interrupted: none is known to be missing, and syncing again skips those that exist: say "do it"."""
    return None


async def post_invoice(ctx: ToolContext, args: PostInvoiceInput) -> dict:
    return await asyncio.to_thread(books.post_invoice, _books(ctx), args.invoice)


async def invoice_posted(ctx: ToolContext, args: PostInvoiceInput) -> dict | None:
    return await asyncio.to_thread(books.posted, _books(ctx), args.invoice)


def _memo(ctx: ToolContext) -> str:
    assert ctx.grant is not None
    return f"AI Employee {ctx.grant.idempotency_key}"  # unique per grant: how the payment is found again


async def register_payment(ctx: ToolContext, args: RegisterPaymentInput) -> dict:
    return await asyncio.to_thread(books.register_payment, _books(ctx), args.invoice, args.amount,
                                   date=args.date.isoformat() if args.date else None, journal=args.journal,
                                   memo=_memo(ctx))


async def payment_registered(ctx: ToolContext, args: RegisterPaymentInput) -> dict | None:
    return await asyncio.to_thread(books.payment_made, _books(ctx), args.invoice, _memo(ctx))


TOOLS = [
    Tool(name="get_financial_records", title="Financial records", handler=get_financial_records, method="GET",
         path="/financial/records", input_model=FinancialRecordsInput, output_schema=RECORDS_SCHEMA,
         description="Customer invoices, vendor bills, credit notes or payments from Odoo, newest first, a page "
                     "at a time, with the total count.", idempotent=True, cached=True),
    Tool(name="get_outstanding_invoices", title="Outstanding invoices", handler=get_outstanding_invoices,
         method="GET", path="/financial/outstanding", input_model=OutstandingInput, output_schema=OUTSTANDING_SCHEMA,
         description="What customers owe: posted invoices not (fully) paid, with days overdue and ageing buckets "
                     "(current, 1-30, 31-60, 61-90, 90+), in the company currency.", idempotent=True, cached=True),
    Tool(name="get_monthly_revenue", title="Monthly revenue", handler=get_monthly_revenue, method="GET",
         path="/financial/monthly-revenue", input_model=MonthlyRevenueInput, output_schema=REVENUE_SCHEMA,
         description="Posted customer invoices minus credit notes by accounting month, untaxed and taxed.",
         idempotent=True, cached=True),
    Tool(name="find_partners", title="Find partners", handler=find_partners, method="GET", path="/partners",
         input_model=FindPartnersInput, output_schema=PARTNERS_SCHEMA,
         description="Contacts Odoo knows by this exact name or email: whom an invoice would go to.",
         idempotent=True),
    Tool(name="create_invoice", title="Create invoice", handler=create_invoice, method="POST",
         path="/invoices/create", input_model=CreateInvoiceInput, output_schema=INVOICE_SCHEMA, read_only=False,
         idempotent=True, write_action="create_invoice", target_param="partner", reconcile=invoice_with_reference,
         description="Create one draft customer invoice for a customer Odoo knows. Its reference makes it "
                     f"exactly once: the same reference returns the invoice that has it. {NEEDS_APPROVAL}",
         summary=lambda p: f"create a draft invoice {p.get('reference')} for {p.get('partner')} "
                           f"({len(p.get('lines') or [])} line(s))"),
    Tool(name="sync_invoices", title="Sync invoices", handler=sync_invoices, method="POST", path="/invoices/sync",
         input_model=SyncInvoicesInput, output_schema=SYNC_SCHEMA, read_only=False, idempotent=True,
         write_action="sync_invoices", reconcile=sync_again,
         description=f"Have these invoices in Odoo as drafts: those whose reference exists are left alone. {NEEDS_APPROVAL}",
         summary=lambda p: f"sync {len(p.get('invoices') or [])} invoice(s) to Odoo"),
    Tool(name="post_invoice", title="Post invoice", handler=post_invoice, method="POST", path="/invoices/post",
         input_model=PostInvoiceInput, output_schema=POSTED_SCHEMA, read_only=False, idempotent=True,
         write_action="post_invoice", target_param="invoice", reconcile=invoice_posted,
         description=f"Post (confirm) a draft invoice: it gets its number and counts in the books. {NEEDS_APPROVAL}",
         summary=lambda p: f"post invoice {p.get('invoice')}"),
    Tool(name="register_payment", title="Register payment", handler=register_payment, method="POST",
         path="/payments/register", input_model=RegisterPaymentInput, output_schema=PAYMENT_SCHEMA, read_only=False,
         destructive=True, irreversible=True, write_action="register_payment", target_param="invoice",
         reconcile=payment_registered,
         description="Record a payment received against a posted invoice. Irreversible: never retried blindly; "
                     f"an interrupted one is looked up by its memo first. {NEEDS_APPROVAL}",
         summary=lambda p: f"register a payment of {p.get('amount')} on invoice {p.get('invoice')}"),
]

VERTICAL = Vertical(
    service="odoo", version="1.0.0", channel="odoo", tools=TOOLS, skills=SKILLS, connect=connect,
    configured=lambda b: b.odoo.is_configured(),
    setup_hint="set ODOO_URL, ODOO_DB and ODOO_API_KEY (or ODOO_USERNAME and ODOO_PASSWORD)",
    probe=probe, describe=lambda b: dict(b.info), refresh=refresh)


def build_app(settings, *, odoo: OdooConnector | None = None, today=None):  # noqa: ANN001, ANN201 - as the builder's
    return build_server(settings, VERTICAL, odoo=odoo, today=today)


if __name__ == "__main__":
    sys.exit(serve(VERTICAL))
