"""A time bound on one await."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(aw: Awaitable[T], seconds: float) -> T:
    """``await aw``, raising TimeoutError after ``seconds``."""
    # asyncio.timeout costs a timer handle; wait_for would also cost a task.
    async with asyncio.timeout(seconds):
        return await aw
