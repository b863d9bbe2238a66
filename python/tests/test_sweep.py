"""vmsim.sweep: a grid in grid order, locally and as Dask tasks; the GIL released."""

import threading
import time

import pandas as pd
import pytest

import vmsim

GRID = {
    "workload": ["seq", "zipf"],
    "ram": ["16MiB", 32 << 20],
    "policy": ["clock", "fifo"],
    "accesses": 4000,
    "footprint": ["8MiB"],
}


def test_one_row_per_point_in_grid_order():
    frame = vmsim.sweep(GRID)
    assert len(frame) == 8 and list(frame["run"]) == list(range(8))
    assert list(frame.columns) == list(vmsim._vmsim.SWEEP_COLUMNS)
    # machines × ram × policies × sources, the last fastest.
    assert list(frame["source"]) == ["seq", "zipf"] * 4
    assert list(frame["policy"]) == ["clock"] * 2 + ["fifo"] * 2 + ["clock"] * 2 + ["fifo"] * 2
    assert list(frame["ram_bytes"]) == [16 << 20] * 4 + [32 << 20] * 4
    assert frame["error"].isna().all() and (frame["accesses"] == 4000).all()


def test_the_grid_file_keys_and_the_command_agree(vmsim_bin):
    import subprocess
    frame = vmsim.sweep({"workloads": ["zipf"], "policies": ["clock", "fifo"],
                         "memory_max": ["2MiB"], "accesses": [3000], "footprint": "4MiB",
                         "alpha": 1.1})
    out = subprocess.run(
        [vmsim_bin, "sweep", "-w", "zipf", "-p", "clock,fifo", "--memory-max", "2MiB",
         "-n", "3000", "--footprint", "4MiB", "--alpha", "1.1"],
        check=True, capture_output=True, text=True).stdout
    expected = pd.read_json(__import__("io").StringIO(out), lines=True)
    assert list(frame["minor_faults"]) == list(expected["minor_faults"])
    assert list(frame["memory_max_bytes"]) == [2 << 20] * 2


def test_thp_is_an_axis():
    frame = vmsim.sweep({"workload": ["seq"], "thp": ["never", "always"], "accesses": 2000,
                         "footprint": "4MiB"})
    assert list(frame["thp"]) == ["never", "always"]
    assert "thp_fault_alloc" in frame.columns


def test_cpus_is_an_axis_and_threads_share_a_workload():
    frame = vmsim.sweep({"workload": ["unmap"], "cpus": [1, 2], "accesses": 4000,
                         "quantum": 200, "footprint": "1MiB"})
    assert list(frame["cpus"]) == [1, 2]
    flushes = list(frame["nr_tlb_remote_flush"])
    assert flushes[0] == 0 and flushes[1] > 50


@pytest.mark.parametrize("grid, words", [
    ({"workload": ["seq"], "rams": ["1GiB"]}, ["rams: unknown key `rams`", "memory_max"]),
    ({"workload": ["seq"], "ram": ["12XB"]}, ["ram: `12XB`: unknown unit"]),
    ({"workload": ["nosuch"]}, ["workload: `nosuch` is not a synthetic workload"]),
    ({"workload": ["seq"], "accesses": [1, 2]}, ["accesses: 2 values"]),
    ({"workload": ["seq"], "policy": ["lru"]}, ["policy: unknown reclaim policy `lru`"]),
    ({"workload": ["seq"], "thp": ["sometimes"]}, ["thp: unknown THP mode `sometimes`"]),
    ({"ram": ["1GiB"]}, ["needs traces", "workloads"]),
])
def test_a_bad_grid_fails_before_any_run(grid, words):
    with pytest.raises(vmsim.OptionError) as e:
        vmsim.sweep(grid)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_a_failing_run_sets_its_error_and_the_others_go_on(tmp_path):
    bad = tmp_path / "bad.vmt"
    bad.write_text("#vmsim-text 1\nR 1 notanumber 8\n")
    frame = vmsim.sweep({"trace": [str(bad)], "workload": ["seq"], "accesses": 1000})
    assert "notanumber" in frame["error"][0] and pd.isna(frame["error"][1])


def test_a_dask_sweep_equals_the_local_one():
    distributed = pytest.importorskip("distributed")
    local = vmsim.sweep(GRID)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = vmsim.sweep(GRID, client=client)
        # Each point ran as a task in a worker process.
        pids = client.run(lambda: __import__("os").getpid())
        assert len(pids) == 2
    pd.testing.assert_frame_equal(local, remote)


def test_long_calls_release_the_gil():
    """While a long run goes on in a thread, this thread keeps running Python: the
    longest pause between its turns is a small part of the run."""
    window = {}

    def work():
        window["start"] = time.perf_counter()
        window["report"] = vmsim.run(workload="uniform", accesses=400000, footprint="64MiB")
        window["end"] = time.perf_counter()

    thread = threading.Thread(target=work)
    turns = []
    thread.start()
    while thread.is_alive():
        turns.append(time.perf_counter())
    thread.join()
    assert window["report"]["accesses"] == 400000
    start, end = window["start"], window["end"]
    inside = [start] + [t for t in turns if start < t < end] + [end]
    longest = max(b - a for a, b in zip(inside, inside[1:]))
    # Holding the GIL, the run would stop this thread for all of its length.
    assert longest < 0.5 * (end - start), (longest, end - start)
