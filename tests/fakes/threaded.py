"""Runs a fake peer (an aiohttp app) on 127.0.0.1, port 0, in a thread with its own event loop,
so synchronous tests and client libraries talk to it exactly as they would to the real service."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class ThreadedServer:
    name = "fake"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def build_app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> Any:
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._runner = web.AppRunner(self.build_app(), shutdown_timeout=0.5)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.port = self._runner.addresses[0][1]

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except BaseException as err:  # surfaced by start()
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            # Handlers still parked in an injected delay must not outlive the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} did not start within 10 s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = self._runner = self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Hold:
    """A request a fake holds open until the test releases it: ``arrived`` is set once the request
    is in the fake's hands, so a test acts at exactly that moment (kill a client, start a rival call)
    instead of hoping a delay is long enough."""

    def __init__(self, match: str, *, after: bool = False) -> None:
        self.match = match
        self.after = after      # held once the fake has done the work (the answer is what waits)
        self.dropped = False    # released with drop=True: the fake forgets the request, as if never read
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self._released = False
        self._wakeups: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def wait(self) -> None:
        event = asyncio.Event()
        with self._lock:
            if self._released:
                return
            self._wakeups.append((asyncio.get_running_loop(), event))
        self.arrived.set()
        await event.wait()

    def release(self, *, drop: bool = False) -> None:
        with self._lock:
            self._released = True
            self.dropped = drop
            wakeups, self._wakeups = self._wakeups, []
        for loop, event in wakeups:
            loop.call_soon_threadsafe(event.set)
