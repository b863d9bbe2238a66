"""vmsim, a virtual memory simulator, from Python.

Every function mirrors a ``vmsim`` command and calls the same library code; options
are named as the command's flags, with underscores (``memory_max`` for
``--memory-max``), and take what the flag takes: sizes as text with a unit
(``"32MiB"``) or as a number of bytes, counts and ratios as numbers, switches as
``True``/``False``, names as text.

- :func:`run` runs a trace or a workload and returns ``vmsim run --json``'s report.
- :func:`policy` and :func:`mrc` simulate replacement policies on a page stream and
  return DataFrames with ``policy``, ``frames``, ``misses`` and ``miss_ratio``.
- :func:`explain` translates addresses and returns every step as records.
- :class:`Trace` reads any trace vmsim reads, in numpy batches.
- :func:`sweep` runs a grid of configurations, locally in parallel or as Dask tasks.

Simulations run with the GIL released. A bad option or input raises a subclass of
:class:`Error` (:class:`OptionError` is a ``ValueError``, :class:`MissingFileError`
a ``FileNotFoundError``) whose message is vmsim's.

See docs/python.md in the repository for a guide with examples.
"""

from __future__ import annotations

import io
import json
import numbers
import os
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _vmsim
from ._errors import Error, MissingFileError, OptionError, TraceError

__all__ = [
    "Error",
    "MissingFileError",
    "OptionError",
    "TraceError",
    "Trace",
    "EVENT_DTYPE",
    "explain",
    "mrc",
    "policy",
    "run",
    "sweep",
]

__version__: str = _vmsim.__version__

#: A value as a flag takes it: text, a number, a switch or a path.
Value = Union[str, int, float, bool, "os.PathLike[str]"]

#: The columns of :func:`policy` and :func:`mrc`, first in that order.
CURVE_COLUMNS = ["policy", "frames", "misses", "miss_ratio"]


def _text(name: str, value: Any) -> str:
    """``value`` as it would be written on the command line."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise OptionError(
        f"{name}: {value!r} is a {type(value).__name__}; give text, a number, True/False or a path"
    )


def _texts(name: str, values: Any) -> List[str]:
    """A list of values (or one value) as text."""
    if values is None:
        return []
    if isinstance(values, (str, bytes, os.PathLike, numbers.Number)):
        values = [values]
    return [_text(name, v) for v in values]


def _optional(name: str, value: Any) -> Optional[str]:
    return None if value is None else _text(name, value)


def run(trace: Optional[Union[str, "os.PathLike[str]"]] = None,
        workload: Optional[str] = None, **options: Value) -> Dict[str, Any]:
    """Run a trace or a built-in workload through the kernel and the MMU.

    Mirrors ``vmsim run --json``: the result has the same keys (``accesses``,
    ``tlb``, ``walks``, ``faults``, ``swap``, ``evictions``, ``processes``,
    ``cycles``, ``io_wait_ns``, ``machine``, ``hardware``, ``kernel``, ...). Without a
    trace, ``workload`` names a built-in workload (``"server"``, the default, ``"hw"``,
    ``"alloc"``, ``"gc"``, or a synthetic one: ``"seq"``, ``"zipf"``, ...).

    ``options`` are ``vmsim run``'s flags with underscores: ``machine``, ``ram``,
    ``swap``, ``memory_max``, ``policy`` (reclaim: ``"clock"``, ``"fifo"``,
    ``"two-list"``), ``accesses``, ``footprint``, ``seed``, ``no_zero_page``, ... With
    ``interval=N`` the result also holds ``"intervals"``: a DataFrame of the counters
    every N accesses (the CSV ``--interval`` writes).

    >>> r = run(workload="seq", accesses=1000, footprint="1MiB")
    >>> r["accesses"]
    1000
    """
    given: List[tuple] = []
    if trace is not None:
        given.append(("trace", _text("trace", trace)))
    if workload is not None:
        given.append(("workload", _text("workload", workload)))
    for name, value in options.items():
        if value is not None:
            given.append((name, _text(name, value)))
    report, rows = _vmsim.run(given)
    result: Dict[str, Any] = json.loads(report)
    if rows is not None:
        result["intervals"] = pd.read_csv(io.StringIO(rows))
    return result


def _curve_frame(records: List[Dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    rest = [c for c in frame.columns if c not in CURVE_COLUMNS]
    return frame[CURVE_COLUMNS + rest]


def policy(trace: Union[str, "os.PathLike[str]"],
           policies: Union[str, Sequence[str], None] = None,
           frames: Union[int, Iterable[int], None] = None, *,
           window: Union[int, Iterable[int], None] = None,
           pff_threshold: Union[int, Iterable[int], None] = None,
           seed: Optional[int] = None, format: Optional[str] = None,
           pid: Optional[int] = None,
           page_size: Union[int, str, None] = None) -> pd.DataFrame:
    """Replacement-only simulation of ``policies`` at each of ``frames`` on the page
    stream of ``trace`` (``vmsim policy``).

    ``trace`` is a page trace (one page number per line, or libCacheSim's
    oracleGeneral) or any event trace, whose accesses become pages of ``page_size``
    bytes (only process ``pid``'s, if given). ``policies``: ``"fifo"``, ``"lru"``
    (the default), ``"clock"``, ``"two-list"``, ``"arc"``, ``"random"``, ``"opt"``,
    ... and ``"ws"``/``"pff"``, which take ``window``/``pff_threshold`` instead of
    frames.

    Returns one row per (policy, size), in order: ``policy``, ``frames``, ``misses``,
    ``miss_ratio``, then ``references``, ``hits``, ``pages``, ``mean_resident``,
    ``max_resident``, ``window``, ``threshold``.
    """
    text = _vmsim.policy(
        _text("trace", trace),
        _texts("policies", policies) or None,
        _texts("frames", frames),
        _texts("window", window) or None,
        _texts("pff_threshold", pff_threshold) or None,
        _optional("seed", seed),
        _optional("format", format),
        _optional("pid", pid),
        _optional("page_size", page_size),
    )
    return _curve_frame(json.loads(text))


def mrc(trace: Union[str, "os.PathLike[str]"],
        policies: Union[str, Sequence[str], None] = None,
        frames: Union[int, Iterable[int], None] = None, *,
        points: Optional[int] = None, sample: Optional[float] = None,
        format: Optional[str] = None, pid: Optional[int] = None,
        page_size: Union[int, str, None] = None) -> pd.DataFrame:
    """Miss-ratio curves of ``policies`` over the page stream of ``trace``
    (``vmsim mrc``).

    Without ``frames``, ``points`` sizes (20 by default) log-spaced up to the trace's
    distinct pages. LRU's curve comes from one pass (stack distances), or from a
    SHARDS sample of the pages at rate ``sample`` (0 < sample <= 1).

    Returns one row per (policy, frames): ``policy``, ``frames``, ``misses``,
    ``miss_ratio``. ``frame.attrs`` holds ``knees`` (each curve's knee, in frames),
    ``references`` and ``pages``.
    """
    text = _vmsim.mrc(
        _text("trace", trace),
        _texts("policies", policies) or None,
        _texts("frames", frames),
        _optional("points", points),
        _optional("sample", sample),
        _optional("format", format),
        _optional("pid", pid),
        _optional("page_size", page_size),
    )
    curves = json.loads(text)
    frame = _curve_frame(curves["points"])
    frame.attrs.update(
        knees=curves["knees"], references=curves["references"], pages=curves["pages"],
        trace=curves["trace"],
    )
    return frame


def explain(addresses: Union[int, str, Iterable[Union[int, str]]], *,
            machine: Optional[str] = None, ram: Union[int, str, None] = None,
            access: Optional[str] = None, mode: Optional[str] = None,
            state: Optional[Union[str, "os.PathLike[str]"]] = None) -> List[Dict[str, Any]]:
    """Translate ``addresses`` in order and return every step, one record per address
    (``vmsim explain --json``): ``va``, ``vpn``, ``vpo``, ``indices``, ``tlb_index``,
    ``tlb_tag``, ``tlb_hit``, ``walk`` (each entry read, level by level),
    ``page_fault``, ``fault``, ``ppn`` and ``pa``.

    The addresses are translated on the demo address space of ``machine`` (or on the
    machine of a ``state`` file), so a repeated address shows the TLB hit the first
    one caused. ``access`` is ``"read"``, ``"write"`` or ``"exec"``; ``mode``
    ``"user"`` or ``"supervisor"``. Addresses are numbers or text (decimal, ``0x``
    hex, ``0b`` binary).
    """
    if isinstance(addresses, (int, str)):
        addresses = [addresses]
    texts = [hex(a) if isinstance(a, numbers.Integral) else _text("addresses", a)
             for a in addresses]
    lines = _vmsim.explain(
        texts,
        _optional("machine", machine),
        _optional("ram", ram),
        _optional("access", access),
        _optional("mode", mode),
        _optional("state", state),
    )
    return [json.loads(line) for line in lines]


#: The numpy dtype of :class:`Trace`'s batches: one record per event.
#:
#: - ``kind``: an index of :attr:`Trace.KINDS` (``read``, ``write``, ``fetch`` for
#:   accesses; ``mmap``, ``fork``, ``exit``, ... for OS events);
#: - ``pid``: the process (the parent, for ``fork`` and ``vfork``);
#: - ``addr``: the virtual address (accesses, ``mmap``, ``munmap``, ``mprotect``,
#:   ``madvise``, ``populate``, ``mlock``, ``shm_attach``, ``shm_detach``, ``brk``, ``nonzero``; the old start for
#:   ``mremap``; the byte offset for ``file_read``, ``file_write``, ``file_cached``
#:   and ``fadvise``);
#: - ``size``: the access's bytes, or the length of a mapping, read, write, populated, locked, cached or advised run (the new length
#:   for ``mremap``; the readahead in bytes for ``file_readahead``; the file's length
#:   in bytes for ``file_size``);
#: - ``arg``: the child (``fork``, ``vfork``), exit code (``exit``), thread
#:   (``thread``, ``thread_exit``), the file number + 1 (``mmap``; 0: anonymous; the
#:   page size in bytes for a hugetlb one), the
#:   key (``shm_attach``), advice (``madvise``), syscall number (``syscall``), the new
#:   start (``mremap``), the file (``file_read``, ``file_write``, ``file_readahead``,
#:   ``file_size``, ``file_cached``, ``file_shmem``, ``file_drop``), 1 or 0
#:   (``thp_disable``), the nanoseconds asleep (``sleep``), the mode (``mlock``: 0
#:   ``munlock``, 1 locked, 2 locked on fault), the ``MCL_*`` flags (``mlockall``; 0
#:   ``munlockall``), the file in the low 32 bits and the ``POSIX_FADV_*`` advice in
#:   the high 32 (``fadvise``), the pages of file-system metadata read
#:   (``fs_metadata``);
#: - ``prot``: protection bits (1 read, 2 write, 4 exec; 8 shared; 16 hugetlb and 32
#:   ``MAP_NORESERVE`` for ``mmap``) of ``mmap``,
#:   ``mprotect`` and ``shm_attach``.
EVENT_DTYPE = np.dtype({
    "names": ["kind", "prot", "pid", "addr", "size", "arg"],
    "formats": ["u1", "u1", "<u4", "<u8", "<u8", "<u8"],
    "offsets": [0, 1, 4, 8, 16, 24],
    "itemsize": _vmsim.EVENT_RECORD_BYTES,
})


class Trace:
    """A trace file, read in numpy batches.

    Any format vmsim reads (vmsim text or binary, lackey, ChampSim, plain ``R``/``W``
    lines, oracleGeneral; gzip, xz or zstd compressed or not). Iterating yields
    structured arrays of :data:`EVENT_DTYPE`, at most ``batch_size`` events each;
    each iteration reads the file again from its start.

    >>> for batch in Trace("docs/examples/scenario.vmt"):   # doctest: +SKIP
    ...     reads = batch[batch["kind"] == Trace.KINDS.index("read")]
    """

    #: The event kinds, by the code in a batch's ``kind`` field.
    KINDS: Sequence[str] = tuple(_vmsim.EVENT_KINDS)

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, format: Optional[str] = None,
                 batch_size: int = 65536, page_size: Union[int, str, None] = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise OptionError(f"batch_size: `{batch_size}`: must be a whole number of at least 1")
        self.path = os.fspath(path)
        self.format = format
        self.batch_size = int(batch_size)
        self.page_size = _optional("page_size", page_size)
        # Opened now, so that a missing or unreadable file fails here.
        self._first: Optional[_vmsim.TraceReader] = self._open()

    def _open(self) -> "_vmsim.TraceReader":
        return _vmsim.TraceReader(self.path, self.format, self.page_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        reader, self._first = (self._first or self._open()), None
        while True:
            data = reader.next_batch(self.batch_size)
            if data is None:
                return
            yield np.frombuffer(data, dtype=EVENT_DTYPE)

    def to_numpy(self) -> np.ndarray:
        """Every event, in one array."""
        batches = list(self)
        if not batches:
            return np.empty(0, dtype=EVENT_DTYPE)
        return np.concatenate(batches)

    def to_pandas(self) -> pd.DataFrame:
        """Every event as a DataFrame, ``kind`` as names (a categorical)."""
        events = self.to_numpy()
        frame = pd.DataFrame({name: events[name] for name in EVENT_DTYPE.names})
        frame["kind"] = pd.Categorical.from_codes(events["kind"].astype(np.int16),
                                                  categories=list(self.KINDS))
        return frame

    def __repr__(self) -> str:
        return f"vmsim.Trace({self.path!r})"


Grid = Mapping[str, Union[Sequence[Value], Value]]


def _grid_items(grid: Grid) -> List[tuple]:
    if not isinstance(grid, Mapping):
        raise OptionError(f"grid: {type(grid).__name__} is not a dict of key: list of values")
    return [(str(key), _texts(str(key), values)) for key, values in grid.items()]


def _sweep_point(items: List[tuple], index: int) -> Dict[str, Any]:
    """Runs run ``index`` of a grid: one Dask task of :func:`sweep`."""
    return json.loads(_vmsim.sweep_rows(items, [index]))


def sweep(grid: Grid, client: Any = None) -> pd.DataFrame:
    """Run a grid of configurations (``vmsim sweep``), one row per run, in grid order.

    ``grid`` maps a grid file's keys to lists of values: the axes ``machines``,
    ``ram``, ``policies``, ``tlb_entries``, ``memory_max``, ``thp``, ``traces``,
    ``workloads``
    (also by the flags' names ``machine``, ``policy``, ``trace``, ``workload``), and
    the settings every run shares, each one value: ``swap``, ``storage``,
    ``accesses``, ``seed``, ``footprint``, ``format`` and the synthetic workloads'
    parameters (``stride``, ``alpha``, ``hot_fraction``, ...). A setting may be given
    bare (``"accesses": 20000``).

    Without ``client`` the runs go in parallel threads in this process; with a
    ``distributed.Client`` each run is one Dask task on the cluster's workers, and the
    result is the same. A run that fails has its ``error`` column set; the others go
    on. Trace paths are opened where the run goes: on a cluster, give paths every
    worker can read.
    """
    items = _grid_items(grid)
    count = _vmsim.sweep_size(items)  # every value checked before any run
    if client is None:
        text = _vmsim.sweep_rows(items, None)
        rows = [json.loads(line) for line in text.splitlines()]
    else:
        futures = client.map(_sweep_point, [items] * count, range(count), pure=False)
        rows = client.gather(futures)
    return pd.DataFrame.from_records(rows, columns=list(_vmsim.SWEEP_COLUMNS))
