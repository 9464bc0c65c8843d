"""The Meta Graph API's configuration: where Graph is, which version, which Page and Instagram account,
and the tokens (never shown: not in repr, not in any message)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from core.config import check_base_url
from core.errors import ConfigError

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v26.0"
_VERSION = re.compile(r"v\d{1,3}\.\d{1,2}")
_NODE_ID = re.compile(r"\d{1,32}")


@dataclass(frozen=True, repr=False)
class MetaConfig:
    access_token: str | None = None       # a (long-lived) user token: Page tokens are derived from it
    page_access_token: str | None = None  # given explicitly, it is used as is and never derived
    page_id: str | None = None
    instagram_account_id: str | None = None
    graph_url: str = DEFAULT_GRAPH_URL
    graph_version: str = DEFAULT_GRAPH_VERSION
    timeout: float = 30.0

    def __post_init__(self) -> None:
        graph_url = check_base_url(self.graph_url or DEFAULT_GRAPH_URL, "META_GRAPH_URL", DEFAULT_GRAPH_URL)
        if re.search(r"/v\d+\.\d+$", graph_url):
            raise ConfigError("META_GRAPH_URL must not include the version: set META_GRAPH_VERSION instead")
        object.__setattr__(self, "graph_url", graph_url)
        if not _VERSION.fullmatch(self.graph_version or ""):
            raise ConfigError("META_GRAPH_VERSION must look like v26.0")
        # The ids go into URL paths: digits only, so a stray value cannot point a request elsewhere.
        for name, value in (("FACEBOOK_PAGE_ID", self.page_id), ("INSTAGRAM_ACCOUNT_ID", self.instagram_account_id)):
            if value is not None and not _NODE_ID.fullmatch(value):
                raise ConfigError(f"{name} must be the numeric id Meta shows for it")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MetaConfig:
        def opt(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        return cls(
            access_token=opt("META_ACCESS_TOKEN"),  # tokens never contain spaces: stripping is safe
            page_access_token=opt("META_PAGE_ACCESS_TOKEN"),
            page_id=opt("FACEBOOK_PAGE_ID"),
            instagram_account_id=opt("INSTAGRAM_ACCOUNT_ID"),
            graph_url=opt("META_GRAPH_URL") or DEFAULT_GRAPH_URL,
            graph_version=opt("META_GRAPH_VERSION") or DEFAULT_GRAPH_VERSION,
        )

    def is_configured(self) -> bool:
        """A token and something to act on (the Page, the Instagram account or both)."""
        return self.facebook_configured() or self.instagram_configured()

    def facebook_configured(self) -> bool:
        return bool(self.page_id and (self.page_access_token or self.access_token))

    def instagram_configured(self) -> bool:
        return bool(self.instagram_account_id and (self.access_token or self.page_access_token))

    @property
    def api_root(self) -> str:
        return f"{self.graph_url}/{self.graph_version}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no message may contain (see core.redact.scrub); derived tokens are added by the transport."""
        return tuple(s for s in (self.access_token, self.page_access_token) if s)

    def __repr__(self) -> str:
        def shown(secret: str | None) -> str:
            return "'<set>'" if secret else "None"

        return (f"MetaConfig(access_token={shown(self.access_token)}, "
                f"page_access_token={shown(self.page_access_token)}, page_id={self.page_id!r}, "
                f"instagram_account_id={self.instagram_account_id!r}, graph_url={self.graph_url!r}, "
                f"graph_version={self.graph_version!r}, timeout={self.timeout!r})")


