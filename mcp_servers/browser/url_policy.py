"""The URL policy: which URLs the browser may load, for navigations and for every sub-request.

Rules, in order:
1. Navigations: only ``http`` and ``https``, and the one page ``about:blank``. ``file:``, ``chrome:``,
   ``data:``, ``javascript:``, ``blob:``, any other ``about:`` page and every other scheme are refused.
   Sub-requests may also be ``ws``/``wss``.
2. A host on BROWSER_ALLOWED_HOSTS (exact name or address, or ``*.suffix`` for any subdomain) is allowed,
   whatever it resolves to: that is how the owner reaches a machine on the LAN, and how tests reach 127.0.0.1.
3. Any other host must be, or resolve (system resolver) only to, public addresses: loopback, private,
   link-local, unspecified, multicast, reserved and other non-global ranges are refused, IPv4-mapped IPv6
   included. A name that does not resolve is refused. With BROWSER_ONLY_ALLOWED_HOSTS=true any other
   host is refused outright, without even being looked up: a browser that visits only the sites named.

Defence in depth, because each layer alone has a gap: the engine checks a URL before navigating to it;
Playwright routing (``Guard``) checks every request a page makes and aborts refused ones, which gives a
clear error; and the engine's local proxy (mcp_servers.browser.proxy) applies the same rules to every
connection Chromium opens, because routing does not see redirect hops or WebSocket handshakes, and
because the proxy connects to the very address it checked (no DNS rebinding between check and use).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from mcp_servers.browser.errors import URLRefused

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
NAVIGABLE_SCHEMES = frozenset({"http", "https"})
FETCHABLE_SCHEMES = frozenset({"http", "https", "ws", "wss"})
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def address_kind(address: str) -> str | None:
    """None for a public address, else what it is ("loopback", "private", ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "unspecified", "link_local", "private", "multicast", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def _normal_host(host: str) -> str:
    host = host.strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    return host


class UrlPolicy:
    def __init__(self, allowed_hosts: Iterable[str] = (), *, resolver: Resolver | None = None,
                 resolve_timeout_s: float = 5.0, cache_ttl_s: float = 30.0, only_allowed: bool = False) -> None:
        self.only_allowed = only_allowed
        self.allowed_hosts = tuple(_normal_host(h[2:]) if h.startswith("*.") else _normal_host(h)
                                   for h in allowed_hosts)
        self._patterns = tuple(h.startswith("*.") for h in allowed_hosts)
        self._resolve = resolver or system_resolver
        self._resolve_timeout = resolve_timeout_s
        self._ttl = cache_ttl_s
        self._cache: dict[tuple[str, int], tuple[float, list[str] | str]] = {}

    def listed(self, host: str) -> bool:
        host = _normal_host(host)
        for entry, pattern in zip(self.allowed_hosts, self._patterns):
            if (host.endswith("." + entry) if pattern else host == entry):
                return True
        return False

    def split(self, url: str, *, navigation: bool = True) -> tuple[str, int] | None:
        """(host, port) of a URL whose scheme is allowed; None for about:blank; URLRefused otherwise."""
        text = url.strip()
        scheme = text.split(":", 1)[0].lower() if ":" in text else ""
        if text.lower() == "about:blank":
            return None
        allowed = NAVIGABLE_SCHEMES if navigation else FETCHABLE_SCHEMES
        if scheme not in allowed:
            if scheme == "about":
                raise URLRefused(url, "only about:blank is allowed among about: pages")
            raise URLRefused(url, f"the scheme {scheme + ':' if scheme else '(none)'} is not allowed, "
                                  f"only {' and '.join(sorted(allowed))}")
        try:
            parts = urlsplit(text)
            port = parts.port or DEFAULT_PORTS[scheme]
            host = _normal_host(parts.hostname or "")
        except (ValueError, UnicodeError):
            raise URLRefused(url, "it is not a valid URL") from None
        if not host:
            raise URLRefused(url, "it has no host")
        return host, port

    async def check(self, url: str, *, navigation: bool = True) -> None:
        """Raise URLRefused unless the browser may load ``url``."""
        target = self.split(url, navigation=navigation)
        if target is None or self.listed(target[0]):
            return
        await self.addresses(*target, url=url)

    async def addresses(self, host: str, port: int, *, url: str | None = None) -> list[str]:
        """The addresses ``host`` may be reached at (all of them checked); URLRefused if none may."""
        host = _normal_host(host)
        label = url or f"{host}:{port}"
        listed = self.listed(host)
        if self.only_allowed and not listed:
            raise URLRefused(label, f"{host} is not on BROWSER_ALLOWED_HOSTS (BROWSER_ONLY_ALLOWED_HOSTS is on)")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            kind = address_kind(host)
            if kind and not listed:
                raise URLRefused(label, f"{host} is a {kind} address and not on BROWSER_ALLOWED_HOSTS")
            return [host]
        resolved = await self._lookup(host, port)
        if isinstance(resolved, str):
            raise URLRefused(label, resolved)
        if not listed:
            for address in resolved:
                kind = address_kind(address)
                if kind:
                    raise URLRefused(label, f"{host} resolves to {address}, a {kind} address, and is not on "
                                            f"BROWSER_ALLOWED_HOSTS")
        return resolved

    async def _lookup(self, host: str, port: int) -> list[str] | str:
        now = time.monotonic()
        hit = self._cache.get((host, port))
        if hit and hit[0] > now:
            return hit[1]
        try:
            result: list[str] | str = await asyncio.wait_for(self._resolve(host, port), self._resolve_timeout)
            if not result:
                result = f"{host} does not resolve"
        except (OSError, asyncio.TimeoutError, UnicodeError) as err:
            result = f"{host} does not resolve ({type(err).__name__})"
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[(host, port)] = (now + self._ttl, result)
        return result


class Guard:
    """Playwright routing for one browser context: every request a page makes passes the policy or is
    aborted, and the refusals are kept so an error can say which URL was refused and why."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy
        self.refused: deque[tuple[str, str, bool]] = deque(maxlen=50)  # (url, reason, was a navigation)

    async def install(self, context) -> None:
        await context.route("**/*", self._route)

    def watch(self, page) -> None:
        """Also note the main frame landing on a refusal of the proxy: routing never sees redirect hops,
        so a click on a link that redirects to a refused address shows up only here."""
        def answered(response) -> None:
            if response.frame == page.main_frame and response.headers.get("x-url-policy") == "refused":
                self.refused.append((response.url, "a redirect led to it and the proxy refused it", True))

        def failed(request) -> None:
            if (request.frame == page.main_frame and request.is_navigation_request()
                    and "ERR_TUNNEL_CONNECTION_FAILED" in (request.failure or "")):
                self.refused.append((request.url, "the proxy refused the connection (or it failed)", True))

        page.on("response", answered)
        page.on("requestfailed", failed)

    def last_navigation_refusal(self) -> URLRefused | None:
        for url, reason, navigation in reversed(self.refused):
            if navigation:
                return URLRefused(url, reason)
        return None

    async def _route(self, route) -> None:
        request = route.request
        try:
            navigation = request.is_navigation_request()
            await self.policy.check(request.url, navigation=navigation)
        except URLRefused as refused:
            self.refused.append((request.url, refused.reason, navigation))
            log.info("browser: refused %s: %s", refused.url[:200], refused.reason)
            await _quietly(route.abort("blockedbyclient"))
            return
        await _quietly(route.continue_())


async def _quietly(action: Awaitable[object]) -> None:
    # The page may have closed or navigated away meanwhile; the request is then moot.
    try:
        await action
    except Exception as err:  # noqa: BLE001 - playwright raises its own Error for a gone request
        log.debug("browser: route already settled: %s", err)
