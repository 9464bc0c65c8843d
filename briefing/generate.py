"""One briefing, start to end: gather, compute each section, write the chart and the note.

The note and its chart are published atomically (Vault.write_atomic) under
``Briefings/<Monday>_Monday_Briefing.md`` and ``Briefings/<Monday>_revenue.png``; running it again for
the same week writes them again from the figures of that moment."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.goals import number
from core.state import StateStore
from core.vault import Vault
from briefing import chart as charts
from briefing.deadlines import deadlines
from briefing.odoo import OdooFigures
from briefing.receivables import receivables
from briefing.render import render
from briefing.revenue import revenue
from briefing.social import social
from briefing.sources import gather
from briefing.subscriptions import audit
from briefing.summary import executive_summary
from briefing.week import Week
from briefing.work import approvals, completed, failures

log = logging.getLogger(__name__)
FOLDER = "Briefings"


@dataclass
class Briefing:
    week: Week
    path: Path
    chart: Path | None
    sections: dict[str, Any]
    summary: list[str]
    stale: dict[str, str]      # section -> 'stale as of …' or 'missing: …'

    def result(self, vault: Vault) -> dict[str, Any]:
        """What the skill answers."""
        return {"path": vault.relative(self.path), "chart": vault.relative(self.chart) if self.chart else None,
                "week_start": self.week.start.isoformat(), "week_end": self.week.end.isoformat(),
                "subscriptions": self.sections["subscriptions"]["findings"], "stale": list(self.stale),
                "stale_reasons": dict(self.stale),
                "summary": " ".join(self.summary)}


def _stale(sections: dict[str, Any]) -> dict[str, str]:
    """The sections that are not current, with what their header says ('missing: Odoo unreachable …')."""
    out = {name: sections[name]["state"] for name in ("revenue", "receivables", "subscriptions")
           if sections[name]["state"] != "ok"}
    if sections["deadlines"]["invoices_state"] != "ok":
        out["deadlines"] = sections["deadlines"]["invoices_state"]
    for platform in sections["social"]["platforms"]:
        if platform["state"] != "ok":
            out[f"social: {platform['name']}"] = platform["state"]
    return out


def generate(vault: Vault, state: StateStore | None, odoo: OdooFigures, week: Week, *,
             now: dt.datetime | None = None) -> Briefing:
    src = gather(vault, state, odoo, week, now=now)
    sections = {"revenue": revenue(src), "receivables": receivables(src), "work": completed(src),
                "approvals": approvals(src), "failures": failures(src), "subscriptions": audit(src, vault),
                "social": social(src), "deadlines": deadlines(src)}
    summary = executive_summary(sections)
    stale = _stale(sections)
    folder = vault.folder(FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    day = week.briefing_date.isoformat()
    chart_path = _chart(vault, folder / f"{day}_revenue.png", sections["revenue"], src.goals)
    text = render(week, src.generated, sections, summary, stale, chart_path.name if chart_path else None)
    path = vault.write_atomic(folder / f"{day}_Monday_Briefing.md", text)
    return Briefing(week, path, chart_path, sections, summary, stale)


def _chart(vault: Vault, path: Path, rev: dict[str, Any], goals: dict[str, Any]) -> Path | None:
    """The chart, when there are figures to draw; a plotting failure costs the picture, not the note."""
    if "series" not in rev:
        return None
    target = number(goals, "monthly_revenue_target")
    note = None if rev["state"] == "ok" else rev["state"]
    try:
        png = charts.revenue_png(rev["series"]["value"], currency=rev.get("currency", ""),
                                 weekly_target=round(target * 12 / 52, 2) if target else None, note=note)
    except Exception as err:  # matplotlib missing or failing must not cost the briefing
        log.exception("the revenue chart could not be drawn")
        rev["chart_error"] = f"{type(err).__name__}: {err}"
        return None
    return vault.write_atomic(path, png)
