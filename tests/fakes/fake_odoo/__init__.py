"""A protocol-faithful fake Odoo (17, 18, 19): JSON-RPC, XML-RPC and JSON-2 over real HTTP on 127.0.0.1.

    with FakeOdoo(version=19) as odoo:
        partner = odoo.add_partner("Azure Interior", is_company=True, customer_rank=1)
        invoice = odoo.add_invoice(partner, [("Consulting", 2, 500.0)], payment_state="partial")
        # any client talks to odoo.url: /jsonrpc, /xmlrpc/2/common|object, /json/2/<model>/<method>

See server.py for the transports and the test controls, models.py for the accounting rules, orm.py for domains,
read/search/create/write and (formatted_)read_group.
"""
from .errors import (
    AccessDenied, AccessError, MissingError, SessionExpiredException, UserError, ValidationError,
)
from .server import Call, FakeOdoo, Hold, User

__all__ = ["AccessDenied", "AccessError", "Call", "FakeOdoo", "Hold", "MissingError", "SessionExpiredException",
           "User", "UserError", "ValidationError"]
