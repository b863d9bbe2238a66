"""vmsim.run: the report of `vmsim run --json`, options by flag name, errors."""

import json
import subprocess

import pytest

import vmsim

HEADLINE = ["accesses", "tlb", "walks", "faults", "swap", "evictions", "processes",
            "cycles", "io_wait_ns", "machine", "hardware", "kernel"]


def test_a_synthetic_workload_reports_what_the_command_reports(vmsim_bin):
    r = vmsim.run(workload="zipf", accesses=20000, footprint="8MiB", ram="4MiB",
                  swap="32MiB", policy="fifo", seed=3)
    for key in HEADLINE + ["workload", "seed", "replay"]:
        assert key in r, key
    assert r["accesses"] == 20000 and r["workload"] == "zipf"
    assert r["kernel"]["reclaim"]["policy"] == "fifo"
    assert r["swap"]["outs"] > 0, "4 MiB of RAM under an 8 MiB footprint swaps"
    out = subprocess.run(
        [vmsim_bin, "run", "--json", "--workload", "zipf", "--accesses", "20000",
         "--footprint", "8MiB", "--ram", "4MiB", "--swap", "32MiB", "--policy", "fifo",
         "--seed", "3"], check=True, capture_output=True, text=True).stdout
    assert r == json.loads(out)


def test_sizes_are_text_with_units_or_numbers_of_bytes():
    a = vmsim.run(workload="seq", accesses=2000, footprint="1MiB", ram="32MiB",
                  memory_max="2MiB")
    b = vmsim.run(workload="seq", accesses=2000, footprint=1 << 20, ram=32 << 20,
                  memory_max=2 << 20)
    assert a == b
    assert a["kernel"]["ram_frames"] == (32 << 20) // 4096


def test_the_server_and_hw_workloads_and_a_trace(root):
    hw = vmsim.run(workload="hw", accesses=5000, machine="sv39")
    assert hw["workload"] == "hw" and hw["machine"] == "sv39"
    server = vmsim.run(accesses=5000, workers=2, wx=True, no_zero_page=True)
    assert server["workload"] == "server" and server["workers"] == 2
    trace = vmsim.run("docs/examples/scenario.vmt")
    assert trace["trace"] == "docs/examples/scenario.vmt"
    assert trace["accesses"] > 0


def test_interval_gives_the_time_series():
    r = vmsim.run(workload="seq", accesses=10000, footprint="2MiB", interval=2500)
    frame = r["intervals"]
    assert len(frame) == 4
    assert list(frame["accesses"]) == [2500, 5000, 7500, 10000]


@pytest.mark.parametrize("options, exception, words", [
    (dict(ram="12XB"), vmsim.OptionError, ["ram", "12XB", "unknown unit"]),
    (dict(accesses=0), vmsim.OptionError, ["accesses", "`0`", "at least 1"]),
    (dict(rams="1GiB"), vmsim.OptionError, ["unknown option `rams`", "memory_max"]),
    (dict(policy="lru"), vmsim.OptionError, ["--policy", "unknown reclaim policy `lru`"]),
    (dict(machine="nosuch"), vmsim.OptionError, ["unknown machine `nosuch`"]),
    (dict(memory_max=100), vmsim.OptionError, ["--memory-max", "100 bytes"]),
    (dict(hot_probability=1.5), vmsim.OptionError, ["hot_probability", "1.5"]),
    (dict(workload="nosuch"), vmsim.OptionError, ["unknown workload `nosuch`", "zipf"]),
    (dict(ram=[1]), vmsim.OptionError, ["ram", "list"]),
])
def test_a_bad_option_is_a_value_error_with_vmsims_message(options, exception, words):
    options.setdefault("workload", "seq")
    with pytest.raises(exception) as e:
        vmsim.run(accesses=options.pop("accesses", 1000), **options)
    assert isinstance(e.value, ValueError) and isinstance(e.value, vmsim.Error)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_threads_on_two_cpus_send_shootdowns():
    one = vmsim.run(workload="unmap", cpus=1, accesses=4000, quantum=200, footprint="1MiB")
    two = vmsim.run(workload="unmap", cpus=2, accesses=4000, quantum=200, footprint="1MiB")
    assert one["kernel"]["vmstat"]["nr_tlb_remote_flush"] == 0
    assert two["kernel"]["vmstat"]["nr_tlb_remote_flush"] > 50
    assert [c["cpu"] for c in two["kernel"]["cpus"]] == [0, 1]
    assert one["kernel"]["rusage"] == two["kernel"]["rusage"]


def test_a_missing_trace_is_a_file_not_found_error(tmp_path):
    missing = tmp_path / "missing.vmt"
    with pytest.raises(FileNotFoundError) as e:
        vmsim.run(missing)
    assert isinstance(e.value, vmsim.MissingFileError)
    assert str(missing) in str(e.value)


def test_a_malformed_trace_is_a_trace_error(tmp_path):
    bad = tmp_path / "bad.vmt"
    bad.write_text("#vmsim-text 1\nR 1 notanumber 8\n")
    with pytest.raises(vmsim.TraceError) as e:
        vmsim.run(bad)
    assert "bad.vmt" in str(e.value) and "line 2" in str(e.value)
