"""The selectors file (selectors.yaml, format in its header): loading, lookups with fallbacks, the self-test.

Each element is a list of CSS selectors tried in order; when none matches, SelectorMissing names the
element (``whatsapp.composer``), so a site change is reported as exactly that instead of a click into
the wrong place.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError
from mcp_servers.browser.config import DEFAULT_SELECTORS, SITES
from mcp_servers.browser.errors import SelectorMissing

VERSION = 1
VARIABLE = "BROWSER_SELECTORS_FILE"
# What the code relies on; a file without one of these is refused when loaded, not when first used.
REQUIRED_ELEMENTS = {
    "whatsapp": ("chat_list", "chat_row", "chat_title", "unread_badge", "pinned_marker", "muted_marker",
                 "search_box", "conversation", "conversation_title", "message_row", "message_incoming",
                 "message_outgoing", "message_text", "message_meta", "message_sender", "message_time",
                 "composer", "send_button"),
    "linkedin": ("logged_in", "start_post_button", "post_dialog", "post_editor", "post_button", "own_post",
                 "post_text"),
}
REQUIRED_ATTRIBUTES = {"whatsapp": ("message_id", "message_meta"), "linkedin": ("post_urn",)}
REQUIRED_PAGES = {"whatsapp": ("home",), "linkedin": ("home", "own_posts")}


@dataclass(frozen=True)
class Detector:
    selectors: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()

    def as_js(self) -> dict:
        return {"selectors": list(self.selectors), "urls": list(self.urls)}


@dataclass(frozen=True)
class SiteSelectors:
    site: str
    pages: Mapping[str, str]
    ready: str
    logged_out: Detector
    checkpoint: Detector
    loading: Detector
    elements: Mapping[str, tuple[str, ...]]
    attributes: Mapping[str, tuple[str, ...]]

    def css(self, name: str) -> tuple[str, ...]:
        return self.elements[name]

    def qualified(self, name: str) -> str:
        return f"{self.site}.{name}"

    def missing(self, name: str) -> SelectorMissing:
        return SelectorMissing(self.qualified(name), self.elements.get(name, ()))


@dataclass(frozen=True)
class Selectors:
    version: int
    path: Path
    sites: Mapping[str, SiteSelectors]

    def site(self, name: str) -> SiteSelectors:
        return self.sites[name]

    @classmethod
    def load(cls, path: Path | str = DEFAULT_SELECTORS) -> "Selectors":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{VARIABLE} {str(path)!r} cannot be read: {err}") from err
        where = f"{VARIABLE} {path}"
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ConfigError(f"{where}: needs `version: {VERSION}` at the top")
        sites = data.get("sites")
        if not isinstance(sites, dict):
            raise ConfigError(f"{where}: needs a `sites` mapping")
        parsed = {name: _site(where, name, sites.get(name)) for name in SITES}
        return cls(version=VERSION, path=path, sites=parsed)


def _site(where: str, site: str, raw: Any) -> SiteSelectors:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: sites.{site} is missing")
    at = f"{where}: sites.{site}"
    elements = _lists(f"{at}.elements", raw.get("elements"))
    attributes = _lists(f"{at}.attributes", raw.get("attributes"))
    pages = raw.get("pages")
    if not isinstance(pages, dict) or not all(isinstance(v, str) for v in pages.values()):
        raise ConfigError(f"{at}.pages must map page names to paths")
    for group, required in ((elements, REQUIRED_ELEMENTS[site]), (attributes, REQUIRED_ATTRIBUTES[site]),
                            (pages, REQUIRED_PAGES[site])):
        absent = [name for name in required if name not in group]
        if absent:
            raise ConfigError(f"{at} lacks {', '.join(absent)}")
    ready = raw.get("ready")
    if ready not in elements:
        raise ConfigError(f"{at}.ready must name one of its elements")
    return SiteSelectors(site=site, pages=dict(pages), ready=ready, elements=elements, attributes=attributes,
                         logged_out=_detector(f"{at}.logged_out", raw.get("logged_out")),
                         checkpoint=_detector(f"{at}.checkpoint", raw.get("checkpoint")),
                         loading=_detector(f"{at}.loading", raw.get("loading", {})))


def _lists(at: str, raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{at} must be a mapping of names to lists")
    out: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, str) and v.strip() for v in values)):
            raise ConfigError(f"{at}.{name} must be a non-empty list of strings")
        out[str(name)] = tuple(v.strip() for v in values)
    return out


def _detector(at: str, raw: Any) -> Detector:
    if not isinstance(raw, dict):
        raise ConfigError(f"{at} must be a mapping with `selectors` and `urls` lists")
    lists = {}
    for key in ("selectors", "urls"):
        values = raw.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise ConfigError(f"{at}.{key} must be a list of strings")
        lists[key] = tuple(values)
    if not lists["selectors"] and not lists["urls"] and not at.endswith(".loading"):
        raise ConfigError(f"{at} needs at least one selector or url")
    return Detector(**lists)


# --- lookups ----------------------------------------------------------------------------------------


async def locate(scope: Any, sel: SiteSelectors, name: str, *, timeout_s: float) -> Any:
    """The first match of the first of ``name``'s selectors that matches inside ``scope`` (a page or a
    locator), waiting up to ``timeout_s`` for any of them; SelectorMissing naming it otherwise."""
    found = await locate_optional(scope, sel, name, timeout_s=timeout_s)
    if found is None:
        raise sel.missing(name)
    return found


async def locate_optional(scope: Any, sel: SiteSelectors, name: str, *, timeout_s: float = 0.0) -> Any:
    css = sel.css(name)
    union = scope.locator(", ".join(css)).first
    if timeout_s > 0:
        try:
            await union.wait_for(state="attached", timeout=timeout_s * 1000)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: the element is not there
            return None
    for one in css:
        candidate = scope.locator(one)
        if await candidate.count():
            return candidate.first
    return None


# --- the self-test ----------------------------------------------------------------------------------


async def check(page: Any, site: str, selectors: Selectors | None = None, *,
                timeout_s: float = 5.0) -> dict[str, str]:
    """Which of ``site``'s elements still match on ``page`` (already on the site, logged in):
    ``{element: "ok" | "missing" | "not_seen"}``. ``not_seen`` is for elements whose absence is normal
    (no pinned chat right now, no post yet, a send button that appears only while typing), so it cannot
    be told from a broken selector. The walk opens one chat (one without unread messages, so nothing is
    marked read) or the post dialog (closed again, nothing typed): it never writes."""
    sel = (selectors or Selectors.load()).site(site)
    module = importlib.import_module(f"mcp_servers.browser.{site}")
    return await module.self_test(page, sel, timeout_s=timeout_s)
