"""The browser engine's settings, read from the environment (DESIGN §7). Every bad value stops the
process with a ConfigError naming its variable."""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.config import env_bool, env_float, is_loopback_host
from core.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_SELECTORS = PACKAGE_DIR / "selectors.yaml"
DEFAULT_EXECUTABLE = Path("/usr/bin/chromium")
SITES = ("whatsapp", "linkedin")

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True)
class BrowserConfig:
    profile_dir: Path
    executable: Path = DEFAULT_EXECUTABLE
    allowed_hosts: tuple[str, ...] = ()
    only_allowed: bool = False        # BROWSER_ONLY_ALLOWED_HOSTS: no other host at all, not even looked up
    selectors_file: Path = DEFAULT_SELECTORS
    whatsapp_url: str = "https://web.whatsapp.com"
    linkedin_url: str = "https://www.linkedin.com"
    headless: bool = True
    nav_timeout_s: float = 30.0       # one navigation, or a site's page becoming usable
    element_timeout_s: float = 10.0   # one element appearing, one click or keystroke batch

    def site_url(self, site: str) -> str:
        if site == "whatsapp":
            return self.whatsapp_url
        if site == "linkedin":
            return self.linkedin_url
        raise ValueError(f"unknown site {site!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, state_dir: Path) -> "BrowserConfig":
        env = dict(os.environ if environ is None else environ)
        return cls(
            profile_dir=_dir(env, "BROWSER_PROFILE_DIR", Path(state_dir) / "browser"),
            executable=_executable(env),
            allowed_hosts=parse_allowed_hosts(env.get("BROWSER_ALLOWED_HOSTS", "")),
            only_allowed=env_bool(env, "BROWSER_ONLY_ALLOWED_HOSTS", False),
            selectors_file=_selectors_file(env),
            whatsapp_url=_site_url(env, "WHATSAPP_URL", "https://web.whatsapp.com"),
            linkedin_url=_site_url(env, "LINKEDIN_URL", "https://www.linkedin.com"),
            headless=env_bool(env, "BROWSER_HEADLESS", True),
            nav_timeout_s=env_float(env, "BROWSER_TIMEOUT_SECONDS", 30.0, minimum=1.0),
            element_timeout_s=env_float(env, "BROWSER_ELEMENT_TIMEOUT_SECONDS", 10.0, minimum=0.5),
        )


def parse_allowed_hosts(raw: str, *, variable: str = "BROWSER_ALLOWED_HOSTS") -> tuple[str, ...]:
    """Comma-separated host names, IP addresses or ``*.suffix`` patterns; no schemes, ports or paths."""
    hosts: list[str] = []
    for item in raw.split(","):
        entry = item.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry.startswith("[") and entry.endswith("]"):
            entry = entry[1:-1]
        if entry.startswith("*."):
            valid = bool(_HOSTNAME.match(entry[2:]))
        else:
            valid = _is_ip(entry) or bool(_HOSTNAME.match(entry))
        if not valid:
            raise ConfigError(f"{variable} has an invalid entry {item.strip()!r}: use host names, IP addresses "
                              f"or patterns like *.example.com, comma-separated, without scheme or port")
        if entry not in hosts:
            hosts.append(entry)
    return tuple(hosts)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _dir(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name, "").strip()
    path = Path(raw).expanduser() if raw else default
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} must be a directory, {path} is a file")
    return path.absolute()


def _executable(env: Mapping[str, str]) -> Path:
    raw = env.get("BROWSER_EXECUTABLE", "").strip()
    if not raw:
        return DEFAULT_EXECUTABLE  # its absence is reported when the browser starts: not configured yet
    found = shutil.which(raw)
    if found is None:
        raise ConfigError(f"BROWSER_EXECUTABLE {raw!r} is not an executable file")
    return Path(found)


def _selectors_file(env: Mapping[str, str]) -> Path:
    raw = env.get("BROWSER_SELECTORS_FILE", "").strip()
    path = Path(raw).expanduser().absolute() if raw else DEFAULT_SELECTORS
    if not path.is_file():
        raise ConfigError(f"BROWSER_SELECTORS_FILE {str(path)!r} does not exist")
    return path


def _site_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    parts = urlsplit(raw)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise ConfigError(f"{name} must be an https URL such as {default}, got {raw!r}")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(f"{name} must use https (http only on loopback), got {raw!r}")
    return raw.rstrip("/")


