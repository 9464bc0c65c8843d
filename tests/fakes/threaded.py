"""Runs a fake peer (an aiohttp app) on 127.0.0.1, port 0, in a thread with its own event loop,
so synchronous tests and client libraries talk to it exactly as they would to the real service.
``Hold`` is the one barrier every fake offers its tests (``fake.hold(...)``); the server keeps them and
releases them all when it stops."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, TypeVar

from aiohttp import web

HoldT = TypeVar("HoldT", bound="Hold")


class ThreadedServer:
    name = "fake"
    url_path = ""  # what follows host:port in ``url``, the base URL a client is configured with

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._holds: list[Hold] = []
        self._holds_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.url_path}"

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
        self.release_all()  # nothing stays parked in a hold once the test is over
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

    # --- holds ------------------------------------------------------------------------------------

    def _add_hold(self, hold: HoldT) -> HoldT:
        with self._holds_lock:
            self._holds.append(hold)
        return hold

    def _take_hold(self, matches: Callable[[Any], bool]) -> Any:
        """The first hold with calls left that ``matches``, one of its calls used up; or None."""
        with self._holds_lock:
            for hold in self._holds:
                if hold.remaining > 0 and matches(hold):
                    if hold.skip > 0:  # this one goes through: the hold is for a later request
                        hold.skip -= 1
                        continue
                    hold.remaining -= 1
                    return hold
        return None

    def release_all(self) -> None:
        """Release every hold this fake has made, parked or still waiting for its request."""
        with self._holds_lock:
            holds = list(self._holds)
        for hold in holds:
            hold.release()


def connection_closed(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class Hold:
    """A request a fake holds open until the test releases it: ``arrived`` is set once the request
    is in the fake's hands, so a test acts at exactly that moment (kill a client, start a rival call)
    instead of hoping a delay is long enough.

    ``match`` is what the fake matches requests against (a path fragment, an endpoint key...). Held
    *before* the fake processes it (``after=False``), a request can still be dropped: by the test
    (``release(drop=True)`` sets ``dropped``) or by the fake when its client went away meanwhile
    (``abandoned``). With ``after=True`` the fake has done the work and only the answer waits. The
    hold applies to the next ``times`` matching requests after the first ``skip``; ``release()`` lets
    all of them go on.
    """

    def __init__(self, match: Any, *, after: bool = False, times: int = 1, skip: int = 0) -> None:
        self.match = match
        self.skip = skip        # matching requests to let through before holding
        self.after = after      # held once the fake has done the work (the answer is what waits)
        self.remaining = times  # matching requests still to be held
        self.arrived = threading.Event()
        self.dropped = False    # released with drop=True: the fake forgets the request, as if never read
        self.abandoned = False  # the fake forgot the request because its client had gone
        self.body: Any = None   # what the held request carried (its JSON body, parameters...), when told
        self.request: web.Request | None = None  # the held request, when told
        self._lock = threading.Lock()
        self._released = False
        self._wakeups: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def released(self) -> bool:
        return self._released

    def client_gone(self) -> bool:
        """True once the held request's client has closed its connection (e.g. it was killed)."""
        return self.request is not None and connection_closed(self.request)

    def release(self, *, drop: bool = False) -> None:
        with self._lock:
            self._released = True
            self.dropped = drop
            wakeups, self._wakeups = self._wakeups, []
        for loop, event in wakeups:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait(self, request: web.Request | None = None, body: Any = None) -> None:
        """Park the calling handler until ``release()`` (at once if already released)."""
        self.request, self.body = request, body
        event = asyncio.Event()
        with self._lock:
            if self._released:
                event.set()
            else:
                self._wakeups.append((asyncio.get_running_loop(), event))
        self.arrived.set()
        await event.wait()
