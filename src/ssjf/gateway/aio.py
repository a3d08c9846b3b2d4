"""A time bound on one await, on every supported Python."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(aw: Awaitable[T], seconds: float) -> T:
    """``await aw``, raising TimeoutError after ``seconds``."""
    if sys.version_info >= (3, 11):
        # asyncio.timeout costs a timer handle; wait_for (3.10) also costs a task.
        async with asyncio.timeout(seconds):
            return await aw
    else:  # pragma: no cover - Python 3.10
        return await asyncio.wait_for(aw, seconds)
