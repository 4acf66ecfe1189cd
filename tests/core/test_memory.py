"""The heap trimmer hands freed interior heap pages back to the kernel (glibc)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from mmradar.memory import heap_trimmer, trim_heap_forever

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="malloc_trim is glibc's (Linux)"
)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_freed_holes_between_live_blocks_are_returned() -> None:
    trim = heap_trimmer()
    assert trim is not None
    trim()
    # 2 KiB blocks come from the C heap (not Python's small-object arenas); keep every 16th
    # alive so that the freed ones are holes the heap cannot shrink past
    blocks = [bytes(2048) for _ in range(40_000)]  # about 80 MiB
    keep = blocks[::16]
    del blocks
    before = _rss_bytes()
    assert trim() is True
    after = _rss_bytes()
    assert before - after > 40 * 2**20, (before, after)
    assert all(len(b) == 2048 for b in keep)  # the live blocks are untouched


async def test_trims_once_per_interval() -> None:
    calls: list[float] = []
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        if len(slept) > 3:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    def trim() -> bool:
        calls.append(len(slept))
        return True

    with pytest.raises(asyncio.CancelledError):
        await trim_heap_forever(trim, interval_s=10.0, sleep=sleep)
    assert slept == [10.0] * 4
    assert calls == [1, 2, 3]


_MAPPED_PROBE = """
import ctypes
from mmradar.memory import tune_heap
assert tune_heap()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(4 << 20))  # glibc's sliding threshold would now rise to 4 MiB
print(*(libc.malloc(256 << 10) % 4096 for _ in range(8)))
"""


def test_large_blocks_stay_mapped_after_a_mapped_block_is_freed() -> None:
    # a block glibc maps on its own starts 16 bytes into a page; one carved from the heap lands
    # anywhere. In a fresh process, so no other test has moved the threshold.
    out = subprocess.run(
        [sys.executable, "-c", _MAPPED_PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["16"] * 8, out


_ARENA_PROBE = """
import ctypes, sys, tempfile, threading
from mmradar.memory import tune_heap
if sys.argv[1] == "tuned":
    assert tune_heap()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
kept = []
def work():
    kept.extend(libc.malloc(4096) for _ in range(256))  # a worker's allocations
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    fp = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(open(out.name).read().count("<heap nr="))
"""


@pytest.mark.parametrize(("mode", "arenas"), [("tuned", 1), ("default", 2)])
def test_worker_threads_share_one_arena_once_tuned(mode: str, arenas: int) -> None:
    # glibc's default gives a thread that allocates an arena of its own (the flight recorder's
    # writers are worker threads); tuned, every thread allocates from the main arena. The
    # default case shows the probe can tell the difference. In a fresh process each.
    out = subprocess.run(
        [sys.executable, "-c", _ARENA_PROBE, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    if mode == "tuned":
        assert out == ["1"], out
    else:
        assert int(out[0]) >= arenas, out
