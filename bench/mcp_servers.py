"""MCP server benchmark (DESIGN §10): the email server against a bare aiohttp hello-world, same run.

    .venv/bin/python bench/mcp_servers.py [--seconds 5] [--connections 16] [--driver wrk|python] [--log-level INFO]

Both servers run as their own processes (the email server exactly as PM2 runs it, DRY_RUN, with the
fake Gmail and a token so every tool is live). Each target gets a warm-up and then a fixed-duration
load from wrk (when /usr/bin/wrk exists) or from an aiohttp client loop. The read tool measured is
gmail_watch: REST `GET /gmail-watch` against MCP `tools/call`, which isolates the protocol's cost.
Budget: /health >= 50% of hello-world req/s; tools/call within 2x of REST.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import requests
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.fakes.fake_gmail import FakeGmail, write_token_file  # noqa: E402

WRK = "/usr/bin/wrk"
CALL = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"gmail_watch","arguments":{}}}')
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-11-25"}


def hello_world(port: int) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, world")
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{url} exited with {proc.returncode}"
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: float, connections: int, body: str | None, tmp: Path) -> tuple[float, float, float]:
    args = [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if body is not None:
        script = tmp / "post.lua"
        headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in HEADERS.items())
        script.write_text(f'wrk.method = "POST"\nwrk.body = \'{body}\'\n{headers}')
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in out, out
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    return rps, p50, p99


async def _python_load(url: str, seconds: float, connections: int, body: str | None) -> tuple[float, float, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            request = session.post(url, data=body, headers=HEADERS) if body is not None else session.get(url)
            async with request as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append((time.perf_counter() - start) * 1000)
    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / (time.perf_counter() - began), cuts[49], cuts[98]


def measure(driver: str, url: str, seconds: float, connections: int, body: str | None, tmp: Path):
    if driver == "wrk":
        run_wrk(url, 1, connections, body, tmp)  # warm-up
        return run_wrk(url, seconds, connections, body, tmp)
    asyncio.run(_python_load(url, 1, connections, body))
    return asyncio.run(_python_load(url, seconds, connections, body))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load per target (at most 10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--driver", choices=("wrk", "python"), default="wrk" if os.path.exists(WRK) else "python")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the email server (INFO logs every request)")
    parser.add_argument("--hello", type=int, help=argparse.SUPPRESS)  # internal: serve hello-world on this port
    args = parser.parse_args()
    if args.hello:
        hello_world(args.hello)
        return 0
    seconds = min(args.seconds, 10.0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    procs: list[subprocess.Popen] = []
    try:
        with FakeGmail() as fake:
            email_port, hello_port = free_port(), free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GMAIL_", "MCP_", "VAULT_", "STATE_"))}
            env.update(VAULT_PATH=str(tmp / "vault"), EMAIL_MCP_PORT=str(email_port), DRY_RUN="true",
                       LOG_LEVEL=args.log_level, GMAIL_API_ENDPOINT=fake.url, GMAIL_TOKEN_URI=fake.token_uri,
                       PYTHONPATH=str(ROOT),
                       GMAIL_TOKEN_FILE=str(write_token_file(tmp / "token.json", fake)))
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            server = [sys.executable, "-m", "mcp_servers.email_server"]
            procs.append(subprocess.Popen(server, cwd=ROOT, env=env, **quiet))
            procs.append(subprocess.Popen([sys.executable, __file__, "--hello", str(hello_port)], cwd=ROOT, **quiet))
            email, hello = f"http://127.0.0.1:{email_port}", f"http://127.0.0.1:{hello_port}"
            wait_up(f"{email}/health", procs[0])
            wait_up(f"{hello}/", procs[1])
            targets = [("hello-world (bare aiohttp)", f"{hello}/", None), ("email /health", f"{email}/health", None),
                       ("REST GET /gmail-watch", f"{email}/gmail-watch", None),
                       ("MCP tools/call gmail_watch", f"{email}/mcp", CALL)]
            results = {name: measure(args.driver, url, seconds, args.connections, body, tmp)
                       for name, url, body in targets}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"MCP servers, {args.driver}, {args.connections} connections, {seconds:g} s per target, "
          f"{os.cpu_count()} CPUs, DRY_RUN email server at LOG_LEVEL={args.log_level}\n")
    print("| target | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for name, (rps, p50, p99) in results.items():
        print(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |")
    health = results["email /health"][0] / results["hello-world (bare aiohttp)"][0]
    mcp = results["REST GET /gmail-watch"][0] / results["MCP tools/call gmail_watch"][0]
    print(f"\n/health = {health:.0%} of hello-world (budget >= 50%): {'ok' if health >= 0.5 else 'OVER BUDGET'}")
    print(f"tools/call costs {mcp:.2f}x the REST call (budget <= 2x): {'ok' if mcp <= 2 else 'OVER BUDGET'}")
    return 0 if health >= 0.5 and mcp <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
