"""At most one authentication attempt per backoff step, so a wrong password or a revoked key cannot
cause a retry storm (and cannot lock the account in Odoo's own login throttling)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from odoo_integration.errors import OdooAuthError, OdooConnectionError, OdooError


class AuthGate:
    """Open until an authentication fails; then every call raises that failure again, without contacting
    Odoo, until ``base`` seconds have passed (doubling per failure up to ``maximum``). Once the wait is over,
    exactly one caller may try; the others keep getting the error until that attempt has a verdict."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, base: float = 30.0,
                 maximum: float = 900.0) -> None:
        self._clock = clock
        self._base, self._maximum = base, maximum
        self._lock = threading.Lock()
        self._failures = 0
        self._until = 0.0
        self._error: OdooAuthError | None = None
        self._trying = False
        self._step = 0  # bumped on each failure, so calls in flight from before it do not count twice

    @property
    def failures(self) -> int:
        return self._failures

    def retry_in(self) -> float | None:
        """Seconds until the next attempt is allowed; None while the gate is open."""
        with self._lock:
            return None if self._error is None else max(0.0, self._until - self._clock())

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Wrap one call that authenticates (or carries credentials) to Odoo."""
        step = self._admit()
        try:
            yield
        except OdooAuthError as err:
            self._failed(err, step)
            raise
        except OdooConnectionError:
            self._settle(None)  # no verdict on the credentials: the next caller may try
            raise
        except OdooError:
            self._settle(True)  # Odoo answered past authentication (a validation error, a missing record...)
            raise
        except BaseException:
            self._settle(None)
            raise
        else:
            self._settle(True)

    def _admit(self) -> int:
        with self._lock:
            if self._error is None:
                return self._step
            wait = self._until - self._clock()
            if wait > 0 or self._trying:
                again = type(self._error)(str(self._error), status=self._error.status,
                                          odoo_name=self._error.odoo_name, odoo_message=self._error.odoo_message)
                again.retry_in = max(0.0, wait)
                raise again
            self._trying = True
            return self._step

    def _failed(self, err: OdooAuthError, step: int) -> None:
        with self._lock:
            if step != self._step:  # a call that left before the failure already recorded: same verdict
                err.retry_in = max(0.0, self._until - self._clock())
                return
            self._step += 1
            self._failures += 1
            wait = min(self._maximum, self._base * 2 ** (self._failures - 1))
            self._until = self._clock() + wait
            self._error, self._trying = err, False
            err.retry_in = wait

    def _settle(self, ok: bool | None) -> None:
        with self._lock:
            self._trying = False
            if ok:
                self._failures, self._error, self._until = 0, None, 0.0
