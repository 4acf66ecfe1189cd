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

Threads. glibc gives every thread that allocates its own arena (up to eight per core), each a
separately mapped heap whose touched pages stay resident; the flight recorder writes on worker
threads, so the first recording written while another worker was busy added a second pool of
pages that never went away. :func:`tune_heap` caps the process at one arena (the worker threads
only write recordings and trim, so they hardly contend for it) and fixes the mmap threshold;
the service calls it once at start, before any worker thread exists.

Where the C library has no ``malloc_trim``/``mallopt`` (musl, macOS) nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sys
from collections.abc import Awaitable, Callable

__all__ = [
    "ARENA_MAX",
    "HEAP_TRIM_INTERVAL_S",
    "MMAP_THRESHOLD_BYTES",
    "heap_trimmer",
    "trim_heap_forever",
    "tune_heap",
]

#: Seconds between two ``malloc_trim`` calls.
HEAP_TRIM_INTERVAL_S = 10.0
#: Blocks at least this large are mapped on their own and unmapped when freed (glibc's
#: ``M_MMAP_THRESHOLD``, fixed instead of glibc's sliding default).
MMAP_THRESHOLD_BYTES = 128 * 1024
#: At most this many malloc arenas (glibc's ``M_ARENA_MAX``): every thread shares the main one.
ARENA_MAX = 1
_M_MMAP_THRESHOLD = -3  # mallopt parameter numbers (malloc.h)
_M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_heap() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` and cap its arenas at
    :data:`ARENA_MAX`; ``False`` where the C library has no ``mallopt``.

    By default glibc raises the mmap threshold to the size of every mapped block it frees (up
    to 32 MiB), after which the flight recorder's checkpoints and the venues' REST snapshot
    bodies (100 KiB to a few MiB, a few a minute) land in the heap below long-lived frames and
    push its extent up for good. The arena cap only binds threads that have not allocated yet:
    call this before starting any.
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    return bool(mallopt(_M_ARENA_MAX, ARENA_MAX)) and ok


def heap_trimmer() -> Callable[[], bool] | None:
    """``malloc_trim(0)`` of this process's C library, or ``None`` where there is none.

    The returned function trims every arena's free pages and says whether any memory was
    released.
    """
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:
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
    """Call ``trim`` on a worker thread every ``interval_s`` seconds, forever (cancel to stop)."""
    while True:
        await sleep(interval_s)
        await asyncio.to_thread(trim)
