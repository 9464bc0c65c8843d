"""One settings object, read from the environment and `.env` (python-dotenv, never overriding)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from dotenv import load_dotenv

import ipaddress
from urllib.parse import urlsplit

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1, localhost and *.localhost: the only hosts plain http may reach (DESIGN §7)."""
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, name: str, example: str) -> str:
    """The URL setting ``name`` without a trailing slash: https, or plain http on loopback only, and nothing
    but scheme, host, port and path. The value itself is never echoed: a pasted URL may carry a secret."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{name} must be an http(s) URL such as {example}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be a plain base URL: no credentials, query or fragment")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(f"{name} must use https (plain http only on loopback: 127.0.0.1, ::1, localhost)")
    return url.strip().rstrip("/")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int = 1 << 31) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _path(env: Mapping[str, str], name: str, default: Path, base: Path) -> Path:
    raw = env.get(name)
    path = Path(raw).expanduser() if raw else default
    return path if path.is_absolute() else (base / path)


MCP_PORTS = {"email": 8080, "browser": 8081, "odoo": 8082, "twitter": 8083, "meta": 8084}
_PORT_VARS = {"email": "EMAIL_MCP_PORT", "browser": "BROWSER_MCP_PORT", "odoo": "ODOO_MCP_PORT",
              "twitter": "TWITTER_MCP_PORT", "meta": "META_MCP_PORT"}
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


@dataclass(frozen=True)
class Settings:
    vault_path: Path
    state_dir: Path
    skills_dir: Path
    dry_run: bool = True
    mcp_host: str = "127.0.0.1"
    mcp_ports: Mapping[str, int] = field(default_factory=lambda: dict(MCP_PORTS))
    mcp_auth_token: str | None = None
    max_iterations: int = 5
    log_level: str = "INFO"
    agent_name: str = "reasoning_loop"
    rescan_seconds: float = 5.0
    approval_ttl_hours: float = 24.0
    # Seconds a write waits for the state store while another program holds it locked; then the
    # store counts as unavailable (tasks are still written; nothing is executed until it is back).
    state_busy_timeout: float = 30.0
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.db"

    def mcp_url(self, service: str) -> str:
        host = "127.0.0.1" if self.mcp_host in ("0.0.0.0", "") else self.mcp_host
        return f"http://{host}:{self.mcp_ports[service]}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, load_dotenv_file: bool = True) -> "Settings":
        if environ is None:
            if load_dotenv_file:
                load_dotenv(PROJECT_ROOT / ".env", override=False)
            environ = os.environ
        env = dict(environ)
        vault = _path(env, "VAULT_PATH", PROJECT_ROOT / "vault", Path.cwd())
        state_dir = _path(env, "STATE_DIR", vault / ".state", Path.cwd())
        skills_dir = _path(env, "SKILLS_DIR", PROJECT_ROOT / ".qwen" / "skills", Path.cwd())
        ports = {svc: env_int(env, var, MCP_PORTS[svc], minimum=0, maximum=65535) for svc, var in _PORT_VARS.items()}
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(sorted(LOG_LEVELS))}, got {level!r}")
        return cls(
            vault_path=vault,
            state_dir=state_dir,
            skills_dir=skills_dir,
            dry_run=env_bool(env, "DRY_RUN", True),
            mcp_host=env.get("MCP_HOST") or "127.0.0.1",
            mcp_ports=ports,
            mcp_auth_token=env.get("MCP_AUTH_TOKEN") or None,
            max_iterations=env_int(env, "MAX_ITERATIONS", 5, minimum=1, maximum=100),
            log_level=level,
            agent_name=env.get("AGENT_NAME") or "reasoning_loop",
            rescan_seconds=env_float(env, "RESCAN_SECONDS", 5.0, minimum=0.05),
            approval_ttl_hours=env_float(env, "APPROVAL_TTL_HOURS", 24.0, minimum=0.0),
            state_busy_timeout=env_float(env, "STATE_BUSY_TIMEOUT_SECONDS", 30.0, minimum=0.0),
            llm_base_url=env.get("LLM_BASE_URL") or None,
            llm_api_key=env.get("LLM_API_KEY") or None,
            llm_model=env.get("LLM_MODEL") or None,
            env=env,
        )
