"""A local forward proxy that applies the URL policy to every connection Chromium opens.

Chromium is launched with this proxy for every scheme, loopback included (Playwright adds
``<-loopback>`` to the bypass list), so nothing reaches the network without passing here. It
catches what Playwright routing cannot: redirect hops, WebSocket handshakes, requests of service
workers; and it connects to the very address it checked, so a name cannot resolve to a public address
at check time and a private one at use.

HTTPS and WSS arrive as ``CONNECT host:port`` and are tunnelled; plain HTTP arrives in absolute form and
is forwarded with ``Connection: close``, so each connection carries one request to one checked host.
Refusals answer 403 with ``X-Url-Policy: refused``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from urllib.parse import urlsplit

from mcp_servers.browser.errors import URLRefused
from mcp_servers.browser.url_policy import UrlPolicy

log = logging.getLogger(__name__)
HEAD_LIMIT = 64 * 1024
_HOP_HEADERS = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


class PolicyProxy:
    def __init__(self, policy: UrlPolicy, *, connect_timeout_s: float = 10.0, head_timeout_s: float = 30.0) -> None:
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self.head_timeout_s = head_timeout_s
        self.refused: deque[tuple[str, str]] = deque(maxlen=100)  # (host:port, reason)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        assert self._server is not None, "proxy not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=HEAD_LIMIT)
        return self.url

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            pass
        except Exception:  # noqa: BLE001 - one bad connection must not take the proxy down
            log.exception("browser proxy: connection failed")
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.head_timeout_s)
        request_line, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ", 2)
        except ValueError:
            return await _answer(writer, 400, "bad request line")
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            upstream = await self._open(writer, host, port_text, target)
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await _pipe(reader, writer, *upstream)
            return
        parts = urlsplit(target)
        if parts.scheme not in ("http", "ws") or not parts.hostname:
            return await _answer(writer, 400, "this proxy forwards absolute http URLs only")
        upstream = await self._open(writer, parts.hostname, str(parts.port or 80), target)
        if upstream is None:
            return
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = [line for line in rest.split(b"\r\n") if line and line.split(b":", 1)[0].strip().lower()
                   not in _HOP_HEADERS]
        upgrade = any(line.split(b":", 1)[0].strip().lower() == b"upgrade" for line in headers)
        headers.append(b"Connection: Upgrade" if upgrade else b"Connection: close")
        upstream[1].write(f"{method} {path} {version}\r\n".encode("latin-1") + b"\r\n".join(headers) + b"\r\n\r\n")
        await _pipe(reader, writer, *upstream)

    async def _open(self, writer: asyncio.StreamWriter, host: str, port_text: str, target: str):
        host = host.strip("[]")
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError(port_text)
        except ValueError:
            await _answer(writer, 400, "bad port")
            return None
        try:
            addresses = await self.policy.addresses(host, port)
        except URLRefused as refused:
            self.refused.append((f"{host}:{port}", refused.reason))
            log.info("browser proxy: refused %s:%s: %s", host, port, refused.reason)
            await _answer(writer, 403, f"refused by the browser's URL policy: {refused.reason}")
            return None
        last: Exception | None = None
        for address in addresses:
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, port), self.connect_timeout_s)
            except (OSError, asyncio.TimeoutError) as err:
                last = err
        await _answer(writer, 502, f"could not connect to {host}:{port} ({type(last).__name__})")
        return None


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = text.encode("utf-8", "replace")
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 f"X-Url-Policy: {'refused' if status == 403 else 'error'}\r\nConnection: close\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _pipe(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                upstream_reader: asyncio.StreamReader, upstream_writer: asyncio.StreamWriter) -> None:
    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while chunk := await src.read(65536):
                dst.write(chunk)
                await dst.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                if dst.can_write_eof():
                    dst.write_eof()

    up = asyncio.ensure_future(copy(client_reader, upstream_writer))
    down = asyncio.ensure_future(copy(upstream_reader, client_writer))
    try:
        # The answer ending ends the exchange: with Connection: close the server hangs up after it.
        await down
    finally:
        up.cancel()
        down.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        upstream_writer.close()
