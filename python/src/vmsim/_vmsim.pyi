"""Type stubs of vmsim's native module (python/rust/lib.rs). Options arrive as text,
as the command line writes them; reports leave as JSON text. Use the functions of
the ``vmsim`` package, which wrap these."""

from typing import List, Optional, Sequence, Tuple

__version__: str
#: The event kinds, by code (`vmsim.Trace.KINDS`).
EVENT_KINDS: List[str]
#: Bytes of one event record in a batch.
EVENT_RECORD_BYTES: int
#: The options `run` takes, as `vmsim run`'s flags without dashes.
RUN_OPTIONS: List[str]
#: The keys of a sweep's grid (a grid file's).
SWEEP_KEYS: List[str]
#: A sweep's columns, in order.
SWEEP_COLUMNS: List[str]

def run(options: Sequence[Tuple[str, str]]) -> Tuple[str, Optional[str]]:
    """(report as JSON, interval rows as CSV when `interval` is given)."""

def policy(
    trace: str,
    policies: Optional[Sequence[str]] = None,
    frames: Sequence[str] = ...,
    window: Optional[Sequence[str]] = None,
    pff_threshold: Optional[Sequence[str]] = None,
    seed: Optional[str] = None,
    format: Optional[str] = None,
    pid: Optional[str] = None,
    page_size: Optional[str] = None,
) -> str:
    """The results as a JSON array (`vmsim policy --json`)."""

def mrc(
    trace: str,
    policies: Optional[Sequence[str]] = None,
    frames: Sequence[str] = ...,
    points: Optional[str] = None,
    sample: Optional[str] = None,
    format: Optional[str] = None,
    pid: Optional[str] = None,
    page_size: Optional[str] = None,
) -> str:
    """The curves as a JSON object (`vmsim mrc --json`)."""

def explain(
    addresses: Sequence[str],
    machine: Optional[str] = None,
    ram: Optional[str] = None,
    access: Optional[str] = None,
    mode: Optional[str] = None,
    state: Optional[str] = None,
) -> List[str]:
    """One JSON object per address (`vmsim explain --json`)."""

def sweep_size(grid: Sequence[Tuple[str, Sequence[str]]]) -> int:
    """The grid's number of runs, every value checked."""

def sweep_rows(
    grid: Sequence[Tuple[str, Sequence[str]]], indices: Optional[Sequence[int]] = None
) -> str:
    """The rows of every run (or of `indices`, in that order) as JSON lines."""

class TraceReader:
    """A trace file read in batches of packed event records."""

    def __init__(
        self, path: str, format: Optional[str] = None, page_size: Optional[str] = None
    ) -> None: ...
    def next_batch(self, limit: int) -> Optional[bytes]:
        """At most `limit` events (at least one), or None at the end."""
