"""The browser engine under the Browser MCP server: Chromium through Playwright, framework-free.

config (BrowserConfig.from_env) -> engine (BrowserEngine: contexts, locks, states) -> web (browse, scrape,
automate), whatsapp (unread, send, find_sent), linkedin (post, find_post); url_policy and proxy keep every
request inside the URL policy; selectors (+ selectors.yaml) hold what the sites' pages look like.
"""
from mcp_servers.browser.config import BrowserConfig
from mcp_servers.browser.engine import BrowserEngine

__all__ = ["BrowserConfig", "BrowserEngine"]
