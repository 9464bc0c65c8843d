"""The Monday-morning CEO briefing (issue 11), framework-free: gather the week's figures with their
sources (sources.py), compute each section (revenue, receivables, work, subscriptions, social,
deadlines), write the note and its chart (render.py, chart.py). ``generate`` runs the whole of it;
the skill ``ceo_briefing_skill`` is a thin layer over it."""
from briefing.generate import Briefing, generate
from briefing.week import Week, last_full_week, week_of

__all__ = ["Briefing", "Week", "generate", "last_full_week", "week_of"]
