"""The property every reader must keep, and the bounds it runs under.

For any input a reader returns a correct result or raises one of our errors naming the input; never another
exception (a raw traceback from a library), never a hang, never an unbounded allocation.
"""

from __future__ import annotations

import faulthandler
import os
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hypothesis import strategies as st

MAX_PEAK_MB = 200  # Python and numpy allocations of one example (tracemalloc sees numpy's buffers)
MAX_SECONDS = 20  # one example
HANG_S = 120  # an example still running after this is a hang: its input and every thread's stack go to HANG_LOG,
HANG_LOG = Path(tempfile.gettempdir()) / "multimodal-fuzz-hang.log"  # and the run ends (pytest captures stderr)
_hang_log = open(HANG_LOG, "w")  # noqa: SIM115 - open for the whole session: the watchdog writes to it at any time


@dataclass
class Outcome:
    result: Any
    error: BaseException | None
    seconds: float
    peak_mb: float


def run_bounded(read: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """`read(*args)` under tracemalloc and a hang watchdog; checks time and peak memory, keeps any exception."""
    _hang_log.seek(0)
    _hang_log.truncate()
    _hang_log.write(f"the last example: {getattr(read, '__name__', read)}{args}; stacks below if it hung\n")
    _hang_log.flush()
    faulthandler.dump_traceback_later(HANG_S, exit=True, file=_hang_log)
    tracemalloc.start()
    start = time.perf_counter()
    result, error = None, None
    try:
        result = read(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - which kind it is, is what the caller checks
        error = e
    finally:
        seconds = time.perf_counter() - start
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        faulthandler.cancel_dump_traceback_later()
    assert seconds < MAX_SECONDS, f"{getattr(read, '__name__', read)} took {seconds:.1f} s on {args}"
    assert peak_mb < MAX_PEAK_MB, f"{getattr(read, '__name__', read)} allocated {peak_mb:.0f} MB on {args}"
    return Outcome(result, error, seconds, peak_mb)


def assert_clear_error(error: BaseException, kind: type[BaseException], names: str | os.PathLike) -> None:
    """`error` is one of ours (`kind`) and its message names the input."""
    if not isinstance(error, kind):
        raise AssertionError(f"raw {type(error).__module__}.{type(error).__name__} instead of {kind.__name__}: "
                             f"{error}") from error
    assert str(names) in str(error), f"the error does not name {str(names)!r}: {error}"


def write(folder: Path, data: bytes, suffix: str) -> Path:
    """A new file holding `data` in `folder` (unique, so examples never see each other's files)."""
    handle, name = tempfile.mkstemp(suffix=suffix, dir=folder)
    with os.fdopen(handle, "wb") as f:
        f.write(data)
    return Path(name)


@st.composite
def mutated_file(draw, seeds: dict[str, bytes], head: int) -> tuple[bytes, str]:
    """(bytes, suffix): one of `seeds` (suffix -> a small valid file) with 1-8 bytes overwritten, most of them in
    its first `head` bytes where the header fields are, then possibly cut short."""
    suffix = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[suffix])
    head = min(len(data), head)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.one_of(st.integers(0, head - 1), st.integers(0, len(data) - 1)))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data), suffix
