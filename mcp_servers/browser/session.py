"""One call's hold on a page: SitePage for a site's persistent page (open the site, tell its state,
find its elements), WebPage for a fresh page of its own; and navigation under the URL policy, which
both share."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playwright.async_api import Error as PlaywrightError

from core.errors import TransientError
from mcp_servers.browser.errors import Checkpoint, NotLoggedIn, SiteUnreachable, URLRefused
from mcp_servers.browser.selectors import SiteSelectors, locate, locate_optional
from mcp_servers.browser.url_policy import Guard

if TYPE_CHECKING:
    from mcp_servers.browser.engine import BrowserEngine


async def navigate(engine: BrowserEngine, page: Any, guard: Guard, url: str) -> Any:
    """Go to ``url`` under the URL policy; the response (None when the page navigated on by itself).
    URLRefused if the URL, or a redirect on the way, is refused."""
    await engine.policy.check(url)
    guard.refused.clear()
    seen = len(engine.proxy.refused)
    try:
        response = await page.goto(url, wait_until="domcontentloaded")
    except PlaywrightError as err:
        message = str(err)
        refused = guard.last_navigation_refusal()
        if refused is not None:
            raise refused from err
        if "ERR_TUNNEL_CONNECTION_FAILED" in message and len(engine.proxy.refused) > seen:
            host, reason = engine.proxy.refused[-1]
            raise URLRefused(url, f"a redirect went to {host}: {reason}") from err
        if "interrupted by another navigation" in message:
            with contextlib.suppress(PlaywrightError):
                await page.wait_for_load_state("domcontentloaded")
            return None
        raise
    if response is not None and await response.header_value("x-url-policy") == "refused":
        raise URLRefused(url, f"a redirect went to {response.url}: {(await response.text())[:200]}")
    with contextlib.suppress(PlaywrightError):  # late scripts and images: best effort, bounded
        await page.wait_for_load_state("load", timeout=min(5.0, engine.config.nav_timeout_s) * 1000)
    return response


class SitePage:
    """One call's hold on a site's page: open the site, find its elements, know whether it verified
    that the site is usable (which makes the call's success set the state to ``ok``)."""

    def __init__(self, engine: BrowserEngine, slot: Any, page: Any, sel: SiteSelectors) -> None:
        self.engine, self.page, self.sel = engine, page, sel
        self.site = slot.name
        self.verified = False
        self._slot = slot

    @property
    def timeout_s(self) -> float:
        return self.engine.config.element_timeout_s

    def url_for(self, page_key: str = "home") -> str:
        base = self.engine.config.site_url(self.site).rstrip("/")
        return f"{base}/{self.sel.pages[page_key].lstrip('/')}"

    async def open(self, page_key: str = "home", *, fresh: bool = False) -> None:
        """Be on the site's ``page_key`` page, usable: navigate there unless the page already is (a
        loaded WhatsApp Web is kept, not reloaded each call), then tell its state; raise NotLoggedIn,
        Checkpoint, SelectorMissing (the ready element) or SiteUnreachable."""
        target = self.url_for(page_key)
        if fresh or self._slot.state != "ok" or _without_fragment(self.page.url) != target:
            await self.goto(target)
        await self.detect()

    async def goto(self, url: str) -> Any:
        assert self._slot.guard is not None
        try:
            response = await navigate(self.engine, self.page, self._slot.guard, url)
        except PlaywrightError as err:
            if gone(err):
                raise
            raise SiteUnreachable(self.site, first_line(err)) from err
        if response is not None and response.status >= 500:
            raise SiteUnreachable(self.site, f"HTTP {response.status} from {response.url}")
        return response

    async def detect(self) -> str:
        deadline = asyncio.get_running_loop().time() + self.engine.config.nav_timeout_s
        probe = {"ready": list(self.sel.css(self.sel.ready)), "logged_out": self.sel.logged_out.as_js(),
                 "checkpoint": self.sel.checkpoint.as_js(), "loading": self.sel.loading.as_js()}
        while True:
            verdict = await self._evaluate(_DETECT_JS, probe)
            if verdict == "checkpoint":
                raise Checkpoint(self.site)
            if verdict == "logged_out":
                raise NotLoggedIn(self.site)
            if verdict == "ready":
                self.verified = True
                return "ready"
            if asyncio.get_running_loop().time() > deadline:
                if verdict == "loading":
                    raise SiteUnreachable(self.site, f"still loading after {self.engine.config.nav_timeout_s:.0f} s")
                raise self.sel.missing(self.sel.ready)
            await asyncio.sleep(0.25)

    async def _evaluate(self, script: str, arg: Any) -> Any:
        try:
            return await asyncio.wait_for(self.page.evaluate(script, arg), self.timeout_s)
        except asyncio.TimeoutError:
            raise SiteUnreachable(self.site, "the page does not answer") from None
        except PlaywrightError as err:
            if gone(err):
                raise
            return None  # navigating meanwhile: the next poll sees the new page

    async def evaluate(self, script: str, arg: Any = None) -> Any:
        try:
            return await asyncio.wait_for(self.page.evaluate(script, arg), self.timeout_s)
        except asyncio.TimeoutError:
            raise SiteUnreachable(self.site, "the page does not answer") from None

    async def locate(self, name: str, scope: Any = None, *, timeout_s: float | None = None) -> Any:
        return await locate(scope or self.page, self.sel, name,
                            timeout_s=self.timeout_s if timeout_s is None else timeout_s)

    async def locate_optional(self, name: str, scope: Any = None, *, timeout_s: float = 0.0) -> Any:
        return await locate_optional(scope or self.page, self.sel, name, timeout_s=timeout_s)


@dataclass
class WebPage:
    engine: BrowserEngine
    page: Any
    guard: Guard

    async def goto(self, url: str) -> Any:
        try:
            return await navigate(self.engine, self.page, self.guard, url)
        except PlaywrightError as err:
            raise TransientError(f"could not load {url[:200]}: {first_line(err)}") from err


# Which state the page is in; checkpoint first (it may show the site's header too), then logged out.


_DETECT_JS = """(d) => {
  const has = (sels) => sels.some((s) => { try { return document.querySelector(s) !== null; } catch (e) { return false; } });
  const at = (urls) => urls.some((u) => location.pathname.includes(u));
  if (at(d.checkpoint.urls) || has(d.checkpoint.selectors)) return "checkpoint";
  if (at(d.logged_out.urls) || has(d.logged_out.selectors)) return "logged_out";
  if (has(d.ready)) return "ready";
  if (at(d.loading.urls) || has(d.loading.selectors)) return "loading";
  return "unknown";
}"""


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def gone(err: BaseException) -> bool:
    text = str(err)
    return "has been closed" in text or "Target closed" in text or "Browser closed" in text
