"""Hand freed heap memory back to the operating system, every few seconds (glibc only).

The service's large allocations are short-lived (websocket frames, REST snapshot bodies, level
lists, scrape output) while the flight recorder's rings keep tens of MiB of frames for
minutes. Under glibc's allocator the pages freed between long-lived blocks stay resident, and
as the rings turn over the heap's touched extent creeps outward: with no trimming a 60-minute
soak grew from 151 to 212 MiB while the live Python heap stayed small. ``malloc_trim(0)``
returns every free page of the heap, interior ones included, to the kernel. Measured in a
soak, the resident size right after a trim moved only from 100.6 MiB (2 min) to 106.0
(10 min), but between trims it climbs back by up to 20 MiB a minute as freed chunks are
reused; trimming every :data:`HEAP_TRIM_INTERVAL_S` seconds keeps it near that floor. The call
runs on a worker thread (ctypes releases the GIL), so the event loop only waits if it
allocates from the C heap while the trim holds it; a trim takes a few milliseconds.

Where the C library has no ``malloc_trim`` (musl, macOS) nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sys
from collections.abc import Awaitable, Callable

__all__ = ["HEAP_TRIM_INTERVAL_S", "MMAP_THRESHOLD_BYTES", "heap_trimmer", "trim_heap_forever"]

#: Seconds between two ``malloc_trim`` calls.
HEAP_TRIM_INTERVAL_S = 10.0
#: Blocks at least this large are mapped on their own and unmapped when freed (glibc's
#: ``M_MMAP_THRESHOLD``, fixed instead of glibc's sliding default).
MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def heap_trimmer() -> Callable[[], bool] | None:
    """``malloc_trim(0)`` of this process's C library, or ``None`` where there is none.

    The returned function trims the heap and says whether any memory was released. Getting it
    also fixes glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES`: by default glibc raises
    the threshold to the size of every mapped block it frees (up to 32 MiB), after which the
    flight recorder's checkpoints and the venues' REST snapshot bodies (100 KiB to a few MiB,
    a few a minute) land in the heap below long-lived frames and push its extent up for good.
    """
    libc = _libc()
    if libc is None:
        return None
    try:
        trim = libc.malloc_trim
        mallopt = libc.mallopt
    except AttributeError:
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
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
    """Call ``trim`` on a worker thread every ``interval_s`` seconds, forever (cancel to stop)."""
    while True:
        await sleep(interval_s)
        await asyncio.to_thread(trim)
