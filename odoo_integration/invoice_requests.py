"""Read an invoice request written the way people write them ("Please invoice Blue Sky Ltd for 8 hours
of consulting at 150", "... and 2 days of design at 600 per day"): the customer and the lines.

Deterministic and offline: what it cannot read it says so, and nothing is guessed. The text is data
(a note, an email); nothing in it can do more than propose a draft for the owner to approve.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationError

_NUMBER = r"\d[\d,]*(?:\.\d+)?|\d+(?:,\d{1,2})?"
_UNITS = r"hours?|hrs?|h|days?|items?|units?|pieces?|pcs|sessions?|months?|weeks?|x|×"
_ITEM = re.compile(
    rf"(?P<qty>{_NUMBER})\s*(?P<unit>{_UNITS})?\s+(?:of\s+)?(?P<what>[^\n;]+?)\s+(?:at|@|for)\s*"
    rf"(?P<cur>[€$£]|EUR|USD|GBP)?\s*(?P<price>{_NUMBER})\s*(?:[€$£]|EUR|USD|GBP)?"
    rf"(?:\s*(?:per|/|an?|each)\s*(?:{_UNITS}|hour|day|item|unit))?", re.IGNORECASE)
_REQUEST = re.compile(r"(?:please\s+)?(?:invoice|bill)\s+(?P<who>.+?)\s+for\s+(?=\d)", re.IGNORECASE)


def _number(text: str) -> Decimal:
    text = text.strip()
    if re.fullmatch(r"\d+,\d{1,2}", text):  # a decimal comma: "7,5 hours"
        text = text.replace(",", ".")
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"cannot read {text!r} as a number", field="text") from None


def read_request(text: str, *, reference: str) -> dict[str, Any]:
    """``{"invoice": {reference, partner, lines[{description, quantity, unit_price}]}, "summary", "total"}``."""
    flat = " ".join(str(text or "").split())
    start = _REQUEST.search(flat)
    if start is None:
        raise ValidationError("no invoice request found: write it like \"Please invoice Blue Sky Ltd for 8 hours "
                              "of consulting at 150\"", field="text")
    customer = start.group("who").strip(" ,.:;\"'")
    rest = flat[start.end():]
    lines = []
    for match in _ITEM.finditer(rest):
        what = re.sub(r"^(?:and|plus|,)\s+", "", match.group("what").strip(" ,.;"), flags=re.IGNORECASE)
        quantity, price = _number(match.group("qty")), _number(match.group("price"))
        if quantity <= 0 or not what:
            continue
        lines.append({"description": what[:1].upper() + what[1:], "quantity": float(quantity),
                      "unit_price": float(price)})
        if len(lines) == 20:
            break
    if not lines:
        raise ValidationError(f"the request for {customer!r} names no line such as \"8 hours of consulting at "
                              "150\"", field="text")
    total = sum(Decimal(str(line["quantity"])) * Decimal(str(line["unit_price"])) for line in lines)
    summary = "; ".join(f"{line['quantity']:g} × {line['description']} at {line['unit_price']:,.2f}" for line in lines)
    return {"invoice": {"reference": reference, "partner": customer, "lines": lines},
            "summary": f"{summary} = {total:,.2f} before tax", "total": float(total)}
