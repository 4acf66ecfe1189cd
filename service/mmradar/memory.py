"""Hand freed heap memory back to the operating system, once a minute (glibc only).

The service's large allocations are short-lived (websocket frames, REST snapshot bodies, level
lists, scrape output) while the flight recorder's rings keep frames for minutes. Under glibc's
allocator the freed holes between long-lived blocks stay mapped: the process's resident size
creeps up in steps of a few MiB although the live Python heap is flat (a 60-minute soak grew
from 151 to 212 MiB with a traced Python heap of about 40 MiB). ``malloc_trim(0)`` returns
every free page of the heap, interior ones included, to the kernel; called once a minute it
costs a few milliseconds and keeps the resident size flat (docs/reliability.md).

Where the C library has no ``malloc_trim`` (musl, macOS) nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sys
from collections.abc import Awaitable, Callable

__all__ = ["HEAP_TRIM_INTERVAL_S", "heap_trimmer", "trim_heap_forever"]

#: Seconds between two ``malloc_trim`` calls.
HEAP_TRIM_INTERVAL_S = 60.0


def heap_trimmer() -> Callable[[], bool] | None:
    """``malloc_trim(0)`` of this process's C library, or ``None`` where there is none.

    The returned function trims the heap and says whether any memory was released.
    """
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def trim_heap() -> bool:
        return bool(trim(0))

    return trim_heap


async def trim_heap_forever(
    trim: Callable[[], bool],
    interval_s: float = HEAP_TRIM_INTERVAL_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Call ``trim`` every ``interval_s`` seconds, forever (cancel to stop)."""
    while True:
        await sleep(interval_s)
        trim()
