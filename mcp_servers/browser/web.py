"""Reading and driving arbitrary pages: browse, scrape, and bounded declarative automations.

Every call runs in a fresh context (engine.web_page) under the URL policy. Everything a caller gets
back is bounded: text length, matches per selector, screenshots, total output, steps and time. A step
list over its limits is refused whole, before anything runs.
"""
from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from playwright.async_api import Error as PlaywrightError

from core.errors import AIEmployeeError, ValidationError
from mcp_servers.browser.engine import BrowserEngine
from mcp_servers.browser.errors import StepsRefused
from mcp_servers.browser.session import WebPage

MAX_TEXT_CHARS = 20_000           # readable text of one page
MAX_FIELDS = 20                   # named selectors in one scrape
MAX_MATCHES = 50                  # texts kept per selector
MAX_MATCH_CHARS = 2_000           # characters kept per text
MAX_SELECTOR_CHARS = 500
MAX_STEPS = 25
MAX_VALUE_CHARS = 10_000          # what one fill may type
MAX_SCREENSHOTS = 3               # per step list
MAX_OUTPUT_CHARS = 100_000        # extracted text of a whole step list
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 120.0
STEP_TIMEOUT_S = 10.0             # one step, within what is left of the budget
ACTIONS = {"goto": {"url"}, "click": {"selector"}, "fill": {"selector", "value"}, "press": {"value"},
           "wait_for": {"selector"}, "extract": {"selector"}, "screenshot": set()}
OPTIONAL = {"press": {"selector"}, "screenshot": {"selector"}}
READ_ONLY_ACTIONS = frozenset({"goto", "wait_for", "extract", "screenshot"})

# Text as a reader sees it, img alt texts included (emoji are images on many sites).
_TEXTS_JS = """([css, limit, chars]) => {
  let nodes;
  try { nodes = document.querySelectorAll(css); } catch (e) { return {error: String(e.message || e)}; }
  const out = [];
  for (const el of Array.from(nodes).slice(0, limit)) {
    out.push((el.innerText || el.textContent || "").trim().slice(0, chars));
  }
  return {texts: out, total: nodes.length};
}"""


async def browse(engine: BrowserEngine, url: str, *, screenshot: bool = False) -> dict:
    """{url (final), status, title, text (readable, bounded), truncated, screenshot (PNG bytes or None)}."""
    await engine.policy.check(url)
    async with engine.web_page() as web:
        response = await web.goto(url)
        title = await web.page.title()
        raw = await web.page.evaluate("() => document.body ? document.body.innerText : ''")
        text, truncated = readable(raw)
        shot = await web.page.screenshot(type="png") if screenshot else None
        return {"url": web.page.url, "status": response.status if response is not None else None,
                "title": title[:500], "text": text, "truncated": truncated, "screenshot": shot}


def readable(raw: str, limit: int = MAX_TEXT_CHARS) -> tuple[str, bool]:
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in (raw or "").splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return (text[:limit], True) if len(text) > limit else (text, False)


async def scrape(engine: BrowserEngine, url: str, selectors: Mapping[str, str]) -> dict:
    """{url, fields: {name: [text, ...]}}: up to MAX_MATCHES texts per selector, each bounded."""
    if not isinstance(selectors, Mapping) or not selectors:
        raise ValidationError("selectors must map names to CSS selectors", field="selectors")
    if len(selectors) > MAX_FIELDS:
        raise ValidationError(f"at most {MAX_FIELDS} selectors per scrape, got {len(selectors)}", field="selectors")
    for name, css in selectors.items():
        if not isinstance(name, str) or not name or len(name) > 64:
            raise ValidationError("selector names must be 1 to 64 characters", field="selectors")
        if not isinstance(css, str) or not css.strip() or len(css) > MAX_SELECTOR_CHARS:
            raise ValidationError(f"selector {name!r} must be a CSS selector of at most {MAX_SELECTOR_CHARS} "
                                  f"characters", field=f"selectors.{name}")
    await engine.policy.check(url)
    async with engine.web_page() as web:
        await web.goto(url)
        fields: dict[str, list[str]] = {}
        for name, css in selectors.items():
            found = await web.page.evaluate(_TEXTS_JS, [css, MAX_MATCHES, MAX_MATCH_CHARS])
            if "error" in found:
                raise ValidationError(f"selector {name!r} is not valid CSS: {found['error'][:200]}",
                                      field=f"selectors.{name}")
            fields[name] = found["texts"]
        return {"url": web.page.url, "fields": fields}


def read_only(steps: Sequence[Mapping[str, Any]]) -> bool:
    """True when every step only reads (goto, wait_for, extract, screenshot): no approval needed."""
    return all(isinstance(s, Mapping) and s.get("action") in READ_ONLY_ACTIONS for s in steps)


def validate_steps(steps: Any, timeout_s: Any = None) -> tuple[list[dict], float]:
    """The steps and the time budget, or StepsRefused saying which limit or step is wrong."""
    if not isinstance(steps, Sequence) or isinstance(steps, (str, bytes)) or not steps:
        raise StepsRefused("steps must be a non-empty list of {action, url?, selector?, value?}")
    if len(steps) > MAX_STEPS:
        raise StepsRefused(f"{len(steps)} steps is over the limit of {MAX_STEPS}; nothing was run")
    budget = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or not 0 < budget <= MAX_TIMEOUT_S:
        raise StepsRefused(f"timeout_s must be a number of seconds up to {MAX_TIMEOUT_S:.0f}; nothing was run")
    clean: list[dict] = []
    screenshots = 0
    for index, step in enumerate(steps, 1):
        if not isinstance(step, Mapping):
            raise StepsRefused(f"step {index} must be an object")
        action = step.get("action")
        if action not in ACTIONS:
            raise StepsRefused(f"step {index}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
        keys = set(step) - {"action"}
        needed, allowed = ACTIONS[action], ACTIONS[action] | OPTIONAL.get(action, set())
        if needed - keys:
            raise StepsRefused(f"step {index} ({action}) needs {', '.join(sorted(needed - keys))}")
        if keys - allowed:
            raise StepsRefused(f"step {index} ({action}) does not take {', '.join(sorted(keys - allowed))}")
        for key in keys:
            value, limit = step[key], MAX_VALUE_CHARS if key == "value" else MAX_SELECTOR_CHARS * 4
            if not isinstance(value, str) or (key != "value" and not value.strip()) or len(value) > limit:
                raise StepsRefused(f"step {index} ({action}): {key} must be a string of at most {limit} characters")
        if index == 1 and action != "goto":
            raise StepsRefused("the first step must be a goto")
        screenshots += action == "screenshot"
        clean.append({"action": action, **{k: step[k] for k in keys}})
    if screenshots > MAX_SCREENSHOTS:
        raise StepsRefused(f"{screenshots} screenshots is over the limit of {MAX_SCREENSHOTS}; nothing was run")
    return clean, float(budget)


async def automate(engine: BrowserEngine, steps: Any, *, timeout_s: float | None = None) -> list[dict]:
    """Run the steps in order in one fresh page: [{ok, value?, error?}] per step run. A failing step
    stops the list (later steps are not run, hence not listed); running out of time fails the step
    that was running. Every goto is checked against the URL policy before the first step runs."""
    clean, budget = validate_steps(steps, timeout_s)
    for step in clean:
        if step["action"] == "goto":
            await engine.policy.check(step["url"])
    deadline = time.monotonic() + budget
    output = 0
    results: list[dict] = []
    async with engine.web_page() as web:
        for number, step in enumerate(clean, 1):
            left = deadline - time.monotonic()
            if left <= 0:
                results.append({"ok": False, "error": f"the time budget of {budget:.0f} s ran out"})
                break
            try:
                value = await asyncio.wait_for(_run(web, step, min(STEP_TIMEOUT_S, left)), left + 1)
            except asyncio.TimeoutError:
                results.append({"ok": False, "error": f"the time budget of {budget:.0f} s ran out"})
                break
            except (PlaywrightError, AIEmployeeError) as err:
                results.append({"ok": False, "error": f"step {number} ({_describe(step)}): {_message(err)}"})
                break
            refused = web.guard.last_navigation_refusal()
            if refused is not None and step["action"] != "goto":
                results.append({"ok": False, "error": f"the page tried to go to a refused URL: {refused}"})
                break
            result: dict[str, Any] = {"ok": True}
            if value is not None:
                if isinstance(value, list):
                    room = max(0, MAX_OUTPUT_CHARS - output)
                    value, cut = _cap(value, room)
                    output += sum(len(v) for v in value)
                    if cut:
                        result["truncated"] = True
                result["value"] = value
            results.append(result)
    return results


async def _run(web: WebPage, step: dict, timeout_s: float) -> Any:
    page, action, ms = web.page, step["action"], timeout_s * 1000
    selector = step.get("selector")
    if action == "goto":
        web.guard.refused.clear()
        response = await web.goto(step["url"])
        return {"url": page.url, "status": response.status if response is not None else None}
    if action == "click":
        await page.locator(selector).first.click(timeout=ms)
    elif action == "fill":
        await page.locator(selector).first.fill(step["value"], timeout=ms)
    elif action == "press":
        if selector:
            await page.locator(selector).first.press(step["value"], timeout=ms)
        else:
            await page.keyboard.press(step["value"])
    elif action == "wait_for":
        await page.locator(selector).first.wait_for(state="visible", timeout=ms)
    elif action == "extract":
        await page.locator(selector).first.wait_for(state="attached", timeout=ms)
        found = await page.evaluate(_TEXTS_JS, [selector, MAX_MATCHES, MAX_MATCH_CHARS])
        if "error" in found:
            raise ValidationError(f"selector {selector!r} is not valid CSS", field="selector")
        return found["texts"]
    elif action == "screenshot":
        if selector:
            return await page.locator(selector).first.screenshot(type="png", timeout=ms)
        return await page.screenshot(type="png", timeout=ms)
    return None


def _cap(texts: list[str], room: int) -> tuple[list[str], bool]:
    kept: list[str] = []
    for text in texts:
        if room <= 0:
            return kept, True
        kept.append(text[:room])
        room -= len(kept[-1])
        if len(kept[-1]) < len(text):
            return kept, True
    return kept, False


def _describe(step: dict) -> str:
    target = step.get("url") or step.get("selector") or step.get("value") or ""
    return f"{step['action']} {target[:100]}".strip()


def _message(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:300]
