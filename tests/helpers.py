"""What tests share beyond fixtures: one way to wait.

eventually(what, fn) calls fn (plain or async) until it returns something
truthy and returns that; after `timeout` seconds it fails, naming what it
waited for and the last value or exception it saw. Exceptions listed in
retry_on (an AssertionError from a check, by default) count as "not yet".
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(what: str, fn: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, *,
                     retry_on: tuple[type[BaseException], ...] = (AssertionError,)) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last
        except retry_on as err:
            last = err
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)
