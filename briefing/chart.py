"""The revenue trend of the last 12 weeks as a PNG beside the note (matplotlib, Agg backend: no
display, no GUI toolkit; the object API, not pyplot, so nothing global is left behind)."""
from __future__ import annotations

import datetime as dt
import io
from typing import Any


def revenue_png(series: list[dict[str, Any]], *, currency: str, weekly_target: float | None,
                note: str | None = None) -> bytes:
    """Bars per week (the briefing's week in a stronger colour), the weekly share of the monthly
    target as a dashed line; ``note`` (e.g. "stale as of …") goes under the title."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    labels = [dt.date.fromisoformat(p["week_start"]).strftime("%d %b") for p in series]
    values = [float(p["value"]) for p in series]
    fig = Figure(figsize=(8.0, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = ["#9db4d3"] * (len(values) - 1) + ["#1f4e8c"]
    ax.bar(range(len(values)), values, color=colours, width=0.7)
    top = max([*values, weekly_target or 0.0, 1.0]) * 1.18  # room above the tallest bar for the label
    if weekly_target:
        ax.axhline(weekly_target, color="#c0392b", linestyle="--", linewidth=1.2)
        ax.text(len(values) - 0.6, weekly_target + top * 0.015, f"weekly share of the monthly target: {weekly_target:,.0f}",
                color="#c0392b", fontsize=8, ha="right", va="bottom")
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel(f"revenue, untaxed ({currency})" if currency else "revenue, untaxed", fontsize=8)
    ax.set_title("Revenue by week (Monday to Sunday), last 12 weeks" + (f"\n{note[:110]}" if note else ""), fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_ylim(bottom=min(0.0, min(values, default=0.0) * 1.1), top=top)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
