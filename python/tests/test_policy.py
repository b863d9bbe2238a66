"""vmsim.policy, vmsim.mrc and vmsim.explain."""

import pytest

import vmsim

BELADY = "docs/examples/belady.txt"


def test_policy_gives_a_row_per_policy_and_size(root):
    frame = vmsim.policy(BELADY, policies=["fifo", "lru", "opt"], frames=[3, 4])
    assert list(frame.columns[:4]) == ["policy", "frames", "misses", "miss_ratio"]
    got = {(p, f): m for p, f, m in zip(frame["policy"], frame["frames"], frame["misses"])}
    # Belady's anomaly: FIFO misses more with 4 frames than with 3.
    assert got == {("fifo", 3): 9, ("fifo", 4): 10, ("lru", 3): 10, ("lru", 4): 8,
                   ("opt", 3): 7, ("opt", 4): 6}
    assert frame["miss_ratio"][0] == pytest.approx(9 / 12)


def test_policy_takes_windows_for_the_working_set(root):
    frame = vmsim.policy(BELADY, "ws", window=[2, 4])
    assert list(frame["window"]) == [2, 4]
    assert frame["frames"].isna().all()


def test_mrc_gives_each_curve_at_every_size(root):
    frame = vmsim.mrc(BELADY, policies=["lru", "fifo"])
    assert list(frame.columns) == ["policy", "frames", "misses", "miss_ratio"]
    assert list(frame["frames"][frame["policy"] == "lru"]) == [1, 2, 3, 4, 5]
    assert list(frame["misses"][frame["policy"] == "fifo"]) == [12, 12, 9, 10, 5]
    assert frame.attrs["references"] == 12 and frame.attrs["pages"] == 5
    some = vmsim.mrc(BELADY, "opt", frames=3)
    assert list(some["misses"]) == [7]


@pytest.mark.parametrize("call, words", [
    (lambda: vmsim.policy(BELADY, "nosuch", [3]), ["policies", "unknown policy `nosuch`"]),
    (lambda: vmsim.policy(BELADY, "lru", [0]), ["frames", "`0`", "at least 1"]),
    (lambda: vmsim.policy(BELADY, "lru"), ["frames is required"]),
    (lambda: vmsim.mrc(BELADY, "ws"), ["policies", "no fixed number of frames"]),
    (lambda: vmsim.mrc(BELADY, sample=0), ["sample", "above 0"]),
    (lambda: vmsim.policy(BELADY, "lru", 3, page_size=1000), ["page_size", "power of two"]),
])
def test_bad_arguments_are_option_errors(root, call, words):
    with pytest.raises(vmsim.OptionError) as e:
        call()
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_a_missing_page_trace_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        vmsim.policy(tmp_path / "none.txt", "lru", [3])
    with pytest.raises(FileNotFoundError):
        vmsim.mrc(tmp_path / "none.txt")


def test_explain_returns_every_step_of_each_translation():
    first, again = vmsim.explain([0x3D4, "0x3d4"], machine="textbook")
    assert first["va"] == 0x3D4 and again["va"] == 0x3D4
    assert not first["tlb_hit"] and again["tlb_hit"], "the repeat hits the TLB"
    assert first["walk"] and first["walk"][0]["level"] >= 1
    assert first["pa"] == again["pa"]
    (w,) = vmsim.explain(0x6010, machine="x86-64", access="write")
    assert w["page_fault"] is False
    with pytest.raises(vmsim.OptionError, match="address `zz` is not a number"):
        vmsim.explain("zz")
    with pytest.raises(vmsim.OptionError, match=r"access: unknown access `jump` \(read, write, exec\)"):
        vmsim.explain(0, access="jump")


def test_explain_reads_a_state_file(root):
    steps = vmsim.explain([0x3D4, 0x400], state="docs/examples/exercise.toml")
    assert len(steps) == 2
    with pytest.raises(FileNotFoundError):
        vmsim.explain(0, state="docs/examples/none.toml")
