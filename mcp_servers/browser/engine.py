"""BrowserEngine: Chromium through Playwright's async API, owned by one process (the Browser MCP server).

- One persistent context per site (``<profile>/<site>``: the owner's login survives restarts), its page
  reused from call to call; one call at a time per site (a lock), because a site's page is a single
  cursor: two calls typing into one WhatsApp tab would interleave.
- Pages for arbitrary URLs (browse, scrape, automate) get a fresh, cookie-less context each call, from one
  separate headless browser, so an automation can never act with the owner's logged-in sessions.
- The URL policy applies everywhere: checked before each navigation, in Playwright routing, and in the
  local proxy every Chromium connection goes through (mcp_servers.browser.url_policy explains why all three).
- Every wait is bounded: launch, navigation, element, lock, close.
- Each site has a state the server reports: ``unknown`` until first used, then ``ok``, ``not_logged_in``,
  ``checkpoint``, ``selector_missing: <site>.<element>`` or ``unreachable``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from core.errors import ConfigError, NotConfiguredError, TransientError
from mcp_servers.browser.config import SITES, BrowserConfig
from mcp_servers.browser.errors import BrowserUnavailable, SiteBusy, SiteStateError
from mcp_servers.browser.proxy import PolicyProxy
from mcp_servers.browser.selectors import Selectors, check
from mcp_servers.browser.session import SitePage, WebPage, first_line, gone
from mcp_servers.browser.url_policy import Guard, Resolver, UrlPolicy

log = logging.getLogger(__name__)

# Quiet Chromium: no updater, sync or field trials phoning home (the proxy refuses what is left), no QUIC
# (it would bypass the proxy), WebRTC only through the proxy.
CHROMIUM_ARGS = ("--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--force-webrtc-ip-handling-policy=disable_non_proxied_udp")
VIEWPORT = {"width": 1280, "height": 900}
LAUNCH_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 10.0
LOCK_TIMEOUT_S = 120.0     # a send or a post holds its site for seconds; longer than this is a stuck call
WEB_PAGES_AT_ONCE = 4
MARKERS_KEPT = 1000


@dataclass
class _Site:
    name: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    context: Any = None
    guard: Guard | None = None
    state: str = "unknown"
    headless: bool | None = None                                    # None: the configured default
    outcomes: OrderedDict = field(default_factory=OrderedDict)      # marker -> ("done", result) | ("unknown", None)


class BrowserEngine:
    def __init__(self, config: BrowserConfig, *, resolver: Resolver | None = None,
                 lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.config = config
        self.policy = UrlPolicy(config.allowed_hosts, resolver=resolver, only_allowed=config.only_allowed)
        self.proxy = PolicyProxy(self.policy)
        self.lock_timeout_s = lock_timeout_s
        self._pw: Any = None
        self._pw_lock = asyncio.Lock()
        self._started = False
        self._web: Any = None
        self._web_lock = asyncio.Lock()
        self._web_slots = asyncio.Semaphore(WEB_PAGES_AT_ONCE)
        self._sites = {name: _Site(name) for name in SITES}
        self._selectors: Selectors | None = None
        self._selectors_stamp: tuple[int, int] | None = None

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> "BrowserEngine":
        exe = self.config.executable
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            raise NotConfiguredError(f"BROWSER_EXECUTABLE {exe} does not exist: install Chromium "
                                     f"(apt-get install chromium) or point BROWSER_EXECUTABLE at it")
        _ = self.selectors  # a broken selectors file stops the start, naming the variable
        await self.proxy.start()
        self._started = True
        return self

    async def _playwright(self) -> Any:
        """Playwright's driver (a Node process of its own) starts with the first page, as Chromium does:
        an idle server that has not browsed yet costs no driver."""
        if not self._started:
            raise BrowserUnavailable("the browser engine is not started")
        async with self._pw_lock:
            if self._pw is None:
                self._pw = await async_playwright().start()
            return self._pw

    async def stop(self) -> None:
        for slot in self._sites.values():
            await self._close_site(slot)
        if self._web is not None:
            web, self._web = self._web, None
            await _bounded(web.close())
        if self._pw is not None:
            pw, self._pw = self._pw, None
            await _bounded(pw.stop())
        self._started = False
        await self.proxy.stop()

    async def __aenter__(self) -> "BrowserEngine":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- state and selectors ------------------------------------------------------------------------

    def state(self, site: str) -> str:
        return self._sites[site].state

    def states(self) -> dict[str, str]:
        return {name: slot.state for name, slot in self._sites.items()}

    @property
    def selectors(self) -> Selectors:
        """The selectors file, read again whenever it changed: fixing a selector needs no restart. A
        broken edit keeps the last good version (logged once); a broken file at start is a ConfigError."""
        path = self.config.selectors_file
        try:
            st = path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if self._selectors is None or stamp != self._selectors_stamp:
            self._selectors_stamp = stamp
            try:
                self._selectors = Selectors.load(path)
            except ConfigError as err:
                if self._selectors is None:
                    raise
                log.error("browser: keeping the previous selectors, the edited file is invalid: %s", err)
        return self._selectors

    # exactly-once bookkeeping for writes, by the caller's marker (its ledger key)
    def recall(self, site: str, marker: str | None) -> tuple[str, Any] | None:
        return None if marker is None else self._sites[site].outcomes.get(marker)

    def remember(self, site: str, marker: str | None, outcome: str, result: Any = None) -> None:
        if marker is None:
            return
        outcomes = self._sites[site].outcomes
        outcomes[marker] = (outcome, result)
        outcomes.move_to_end(marker)
        while len(outcomes) > MARKERS_KEPT:
            outcomes.popitem(last=False)

    # --- sites --------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def site(self, name: str) -> AsyncIterator[SitePage]:
        """The site's page, held for this call alone. The call's outcome sets the site's state."""
        slot = self._sites[name]
        try:
            await asyncio.wait_for(slot.lock.acquire(), self.lock_timeout_s)
        except asyncio.TimeoutError:
            raise SiteBusy(f"{name}: another call has held the page for over {self.lock_timeout_s:.0f} s") from None
        try:
            page = await self._site_page(slot)
            session = SitePage(self, slot, page, self.selectors.site(name))
            try:
                yield session
            except SiteStateError as err:
                if slot.state != err.state:
                    log.warning("browser: %s is now %s", name, err.state)
                slot.state = err.state
                raise
            except PlaywrightError as err:
                if gone(err):
                    await self._close_site(slot)
                    raise BrowserUnavailable(f"{name}: the browser went away ({first_line(err)})") from err
                raise TransientError(f"{name}: the page did not respond: {first_line(err)}") from err
            else:
                if session.verified:
                    if slot.state != "ok":
                        log.info("browser: %s is ok", name)
                    slot.state = "ok"
        finally:
            slot.lock.release()

    async def restart_site(self, name: str, *, headless: bool | None = None) -> None:
        """Close the site's browser; the next call opens it again, visible when ``headless`` is False
        (the login command: the owner scans the QR code or types the password in that window)."""
        slot = self._sites[name]
        async with slot.lock:
            await self._close_site(slot)
            slot.headless = headless

    async def self_test(self, name: str) -> dict[str, str]:
        async with self.site(name) as session:
            await session.open()
            return await check(session.page, name, self.selectors,
                               timeout_s=min(5.0, self.config.element_timeout_s))

    async def _site_page(self, slot: _Site) -> Any:
        await self._playwright()
        if slot.context is None:
            slot.context, slot.guard = await self._launch_site(slot)
        pages = [p for p in slot.context.pages if not p.is_closed()]
        if pages:
            return pages[0]
        page = await slot.context.new_page()
        if slot.guard is not None:
            slot.guard.watch(page)
        return page

    async def _launch_site(self, slot: _Site) -> tuple[Any, Guard]:
        headless = self.config.headless if slot.headless is None else slot.headless
        profile = self.config.profile_dir / slot.name
        profile.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            context = await self._pw.chromium.launch_persistent_context(
                user_data_dir=str(profile), **self._launch_options(headless),
                accept_downloads=False, viewport=VIEWPORT)
        except PlaywrightError as err:
            hint = " (is another process using this profile?)" if "in use" in str(err).lower() else ""
            raise BrowserUnavailable(f"{slot.name}: Chromium did not start{hint}: {first_line(err)}") from err
        guard = Guard(self.policy)
        await guard.install(context)
        for page in context.pages:
            guard.watch(page)
        self._set_timeouts(context)
        context.on("close", lambda *_: self._forget(slot, context))
        return context, guard

    def _forget(self, slot: _Site, context: Any) -> None:
        if slot.context is context:
            slot.context, slot.guard = None, None

    async def _close_site(self, slot: _Site) -> None:
        context, slot.context, slot.guard = slot.context, None, None
        if context is not None:
            await _bounded(context.close())

    def _launch_options(self, headless: bool) -> dict:
        args = list(CHROMIUM_ARGS) + (["--headless=new"] if headless else [])
        return {
            "executable_path": str(self.config.executable), "headless": headless, "args": args,
            # Chromium refuses its sandbox as root; anywhere else it keeps it.
            "chromium_sandbox": os.geteuid() != 0,
            "proxy": {"server": self.proxy.url}, "timeout": LAUNCH_TIMEOUT_S * 1000,
        }

    def _set_timeouts(self, context: Any) -> None:
        context.set_default_timeout(self.config.element_timeout_s * 1000)
        context.set_default_navigation_timeout(self.config.nav_timeout_s * 1000)

    # --- pages for arbitrary URLs -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def web_page(self) -> AsyncIterator[WebPage]:
        """A page in a fresh context of its own (no cookies, no service workers, no downloads, popups
        closed), closed after the call."""
        try:
            await asyncio.wait_for(self._web_slots.acquire(), self.lock_timeout_s)
        except asyncio.TimeoutError:
            raise SiteBusy(f"the browser is busy with {WEB_PAGES_AT_ONCE} pages") from None
        context = None
        try:
            browser = await self._web_browser()
            try:
                context = await browser.new_context(accept_downloads=False, service_workers="block",
                                                    viewport=VIEWPORT)
                guard = Guard(self.policy)
                await guard.install(context)
                self._set_timeouts(context)
                page = await context.new_page()
                guard.watch(page)
            except PlaywrightError as err:
                raise BrowserUnavailable(f"the browser did not open a page: {first_line(err)}") from err
            context.on("page", lambda popup: asyncio.ensure_future(_bounded(popup.close())))
            yield WebPage(self, page, guard)
        finally:
            if context is not None:
                await _bounded(context.close())
            self._web_slots.release()

    async def _web_browser(self) -> Any:
        await self._playwright()
        async with self._web_lock:
            if self._web is None or not self._web.is_connected():
                try:
                    self._web = await self._pw.chromium.launch(**self._launch_options(True))
                except PlaywrightError as err:
                    raise BrowserUnavailable(f"Chromium did not start: {first_line(err)}") from err
            return self._web


async def _bounded(action: Any, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(action, timeout_s)
