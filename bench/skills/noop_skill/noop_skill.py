"""Benchmark-only: an action that does nothing, so bench/pipeline.py measures the pipeline itself."""
from core.engine.skills import ActionContext, Skill

skill = Skill("noop_skill")


@skill.action(schema={"type": "object", "properties": {"note": {"type": "string"}}}, channel="local",
              idempotent=True)
def noop(params: dict, ctx: ActionContext) -> dict:
    return {"ok": True}
