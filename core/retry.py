"""One backoff helper for every retry in the suite: exponential, jittered, bounded, and it honours
the platform's own wait (``RateLimitError.retry_after``). Auth errors are never retried."""
from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, TypeVar

from core.errors import RateLimitError, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    factor: float = 2.0
    maximum: float = 60.0
    attempts: int = 4

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.maximum * 10)
        ceiling = min(self.maximum, self.base * self.factor ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # "equal jitter": never zero, never in lockstep


def retry_call(fn: Callable[[], T], *, backoff: Backoff = Backoff(), sleep: Callable[[float], object] = time.sleep,
               on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Call ``fn`` until it succeeds, raises a non-transient error, or attempts run out."""
    attempt = 1
    while True:
        try:
            return fn()
        except TransientError as err:
            if attempt >= backoff.attempts:
                raise
            wait = backoff.delay(attempt, err)
            if on_retry:
                on_retry(attempt, err, wait)
            sleep(wait)
            attempt += 1


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` value (seconds, or an HTTP date) as seconds from now; None if unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
