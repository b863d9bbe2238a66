"""vmsim.Trace: a trace's events in numpy batches."""

import numpy as np
import pytest

import vmsim

SCENARIO = """#vmsim-text 1
spawn 1
mmap 1 0x10000000 16KiB rw-
W 1 0x10000000 8
R 1 0x10001000 8
fork 1 2
switch 2
W 2 0x10000000 8
R 2 0x10003ff0 16
exit 2
R 1 0x10000000
"""


def kinds(events):
    return [vmsim.Trace.KINDS[k] for k in events["kind"]]


def test_events_come_as_structured_arrays(tmp_path):
    path = tmp_path / "scenario.vmt"
    path.write_text(SCENARIO)
    batches = list(vmsim.Trace(path))
    assert len(batches) == 1 and batches[0].dtype == vmsim.EVENT_DTYPE
    events = batches[0]
    assert kinds(events) == ["spawn", "mmap", "write", "read", "fork", "switch", "write",
                             "read", "exit", "read"]
    assert list(events["pid"]) == [1, 1, 1, 1, 1, 2, 2, 2, 2, 1]
    assert events["addr"][3] == 0x10001000 and events["size"][7] == 16
    assert events["size"][1] == 16384 and events["prot"][1] == 3  # rw-
    assert events["arg"][4] == 2, "fork's child"


def test_batches_hold_at_most_batch_size_events_and_iterate_again(tmp_path):
    path = tmp_path / "many.vmt"
    lines = ["#vmsim-text 1", "spawn 1", "mmap 1 0x10000000 1MiB rw-"]
    lines += [f"R 1 {0x10000000 + 64 * i:#x} 8" for i in range(10000)]
    path.write_text("\n".join(lines) + "\n")
    trace = vmsim.Trace(path, batch_size=3000)
    sizes = [len(b) for b in trace]
    assert sizes == [3000, 3000, 3000, 1002]
    assert sum(len(b) for b in trace) == 10002, "a second pass reads it again"
    events = trace.to_numpy()
    reads = events[events["kind"] == vmsim.Trace.KINDS.index("read")]
    assert np.array_equal(reads["addr"], 0x10000000 + 64 * np.arange(10000, dtype=np.uint64))
    frame = trace.to_pandas()
    assert frame["kind"].iloc[0] == "spawn" and len(frame) == 10002


def test_any_format_vmsim_reads(root):
    events = vmsim.Trace("docs/examples/scenario.vmt").to_numpy()
    assert len(events) > 0
    pages = vmsim.Trace("docs/examples/belady.txt", format="plain")
    with pytest.raises(vmsim.TraceError):
        pages.to_numpy()


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        vmsim.Trace(tmp_path / "none.vmt")
    with pytest.raises(vmsim.OptionError, match="unknown format `nosuch`"):
        vmsim.Trace(tmp_path / "none.vmt", format="nosuch")
    with pytest.raises(vmsim.OptionError, match="batch_size"):
        vmsim.Trace(tmp_path / "none.vmt", batch_size=0)
    bad = tmp_path / "bad.vmt"
    bad.write_text("#vmsim-text 1\nspawn 1\nR 1 zz 8\n")
    with pytest.raises(vmsim.TraceError, match="bad.vmt"):
        list(vmsim.Trace(bad))
