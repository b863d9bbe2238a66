//! End-to-end tests of the trace commands: convert, stat, run on traces and workloads,
//! sweep, plot and record.

mod support;
use support::{file, s, tmp, vmsim};

use std::process::Command;

const SCENARIO: &str = "# two processes share a page, one copies on write
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
";

#[test]
fn every_writable_format_round_trips_through_convert() {
    let text = tmp("scenario.vmt");
    std::fs::write(&text, SCENARIO).unwrap();
    let (bin, zst, back) = (tmp("s.vmb"), tmp("s.vmb.zst"), tmp("back.vmt"));
    for (out, extra) in [(&bin, None), (&zst, Some("--zstd"))] {
        let mut args = vec!["trace", "convert", s(&text), s(out)];
        args.extend(extra);
        let (ok, _, err) = vmsim(&args);
        assert!(ok, "{err}");
    }
    assert_eq!(&std::fs::read(&bin).unwrap()[..8], b"VMSIMTRC");
    let (ok, _, err) = vmsim(&["trace", "convert", s(&zst), s(&back)]);
    assert!(ok, "{err}");
    let back_text = std::fs::read_to_string(&back).unwrap();
    assert!(back_text.starts_with("#vmsim-text 1\n"));
    // The same events, whatever the path.
    let stats: Vec<String> = [&text, &bin, &zst, &back]
        .iter()
        .map(|p| {
            let (ok, out, err) = vmsim(&["trace", "stat", "--json", s(p)]);
            assert!(ok, "{err}");
            let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("trace");
            o.remove("format");
            v.to_string()
        })
        .collect();
    assert!(stats.windows(2).all(|w| w[0] == w[1]), "{stats:?}");
    let v: serde_json::Value = serde_json::from_str(&stats[0]).unwrap();
    assert_eq!(v["accesses"], 5);
    assert_eq!(v["writes"], 2);
    assert_eq!(v["processes"], 2);
    assert_eq!(v["pids"], serde_json::json!([1, 2]));
    // The 16-byte read crosses no page; pages: 0x10000 and 0x10001 of pid 1, 0x10000
    // and 0x10003 of pid 2.
    assert_eq!(v["footprint_pages"], 4);
    // Converting onto the input is refused, and nothing is lost.
    let (ok, _, err) = vmsim(&["trace", "convert", s(&text), s(&text)]);
    assert!(!ok && err.contains("this is the input"), "{err}");
    assert_eq!(std::fs::read_to_string(&text).unwrap(), SCENARIO);
}

#[test]
fn run_on_a_scenario_reports_the_headline_fields() {
    let text = tmp("run.vmt");
    std::fs::write(&text, SCENARIO).unwrap();
    let (ok, out, err) = vmsim(&["run", "--json", s(&text)]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["accesses"], 5);
    assert_eq!(v["faults"]["cow"], 1, "{out}");
    assert_eq!(v["faults"]["segv"], 0);
    assert_eq!(v["swap"]["ins"], 0);
    assert!(v["walks"].as_u64().unwrap() >= 3);
    assert!(v["cycles"].as_u64().unwrap() > 0);
    let tlb = v["tlb"].as_array().unwrap();
    assert!(tlb
        .iter()
        .all(|t| t["hits"].is_u64() && t["misses"].is_u64()));
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2);
    assert!(procs[0]["peak_rss_pages"].as_u64().unwrap() >= 1);
}

/// `fs-metadata`: the pages a lookup read are read for the process (counted in
/// `pgpgin`) and charged to its group, on the active file list; a group too small for
/// them reclaims instead of killing; `--no-fs-metadata` ignores them.
#[test]
fn fs_metadata_is_read_into_the_group_unless_switched_off() {
    let trace = tmp("metadata.vmt");
    std::fs::write(
        &trace,
        "spawn 1\nmmap 1 0x10000000 16KiB rw-\nW 1 0x10000000 8\nfs-metadata 1 40\nR 1 0x10000000 8\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--json", "--policy", "two-list", s(&trace)];
        a.extend_from_slice(extra);
        let (ok, out, err) = vmsim(&a);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["kernel"].clone()
    };
    let with = run(&["--memory-max", "8MiB"]);
    let without = run(&["--memory-max", "8MiB", "--no-fs-metadata"]);
    let pgpgin = |k: &serde_json::Value| k["vmstat"]["pgpgin"].as_u64().unwrap();
    assert_eq!(pgpgin(&with), pgpgin(&without) + 40 * 4, "KiB read");
    let file = |k: &serde_json::Value| k["groups"][1]["stat"]["file"].as_u64().unwrap();
    assert_eq!(file(&with), file(&without) + 40, "{}", with["groups"][1]);
    assert_eq!(with["oom_kills"], 0);
    // 40 pages into a group of 16: reclaim takes the oldest, nothing is killed.
    let tight = run(&["--memory-max", "64KiB"]);
    assert_eq!(pgpgin(&tight), pgpgin(&without) + 40 * 4);
    assert!(file(&tight) <= 16, "{}", tight["groups"][1]);
    assert_eq!(tight["oom_kills"], 0);
}

#[test]
fn a_malformed_trace_line_is_named() {
    let bad = tmp("bad.vmt");
    std::fs::write(&bad, "spawn 1\nmmap 1 0x1000 4KiB rw-\nR 1 0xqq\n").unwrap();
    let (ok, _, err) = vmsim(&["run", s(&bad)]);
    assert!(!ok);
    assert!(
        err.contains("bad.vmt: line 3") && err.contains("`0xqq`"),
        "{err}"
    );
    let wrong = tmp("wrong.vmb");
    std::fs::write(&wrong, b"VMSIMTRC\x09\x00\x00\x00\x00\x00\x00\x00").unwrap();
    let (ok, _, err) = vmsim(&["trace", "stat", s(&wrong)]);
    assert!(!ok && err.contains("version 9 is not supported"), "{err}");
}

#[test]
fn lackey_and_plain_traces_run_with_inferred_regions() {
    let lk = tmp("t.lackey");
    std::fs::write(
        &lk,
        "==1== Lackey\nI  00401000,4\n S 7ff000000,8\n L 7ff000008,8\n M 00602000,4\n",
    )
    .unwrap();
    let (ok, out, err) = vmsim(&["run", "--json", s(&lk)]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["replay"]["accesses"], 5);
    assert_eq!(v["replay"]["inferred_regions"], 3);
    assert_eq!(v["faults"]["segv"], 0);
    let plain = tmp("p.trace");
    std::fs::write(&plain, "R 0x10000\nW 0x10008\nR 0x20000\n").unwrap();
    let (ok, out, err) = vmsim(&["trace", "stat", s(&plain)]);
    assert!(ok, "{err}");
    assert!(
        out.contains("(plain)") && out.contains("footprint       2 pages"),
        "{out}"
    );
}

#[test]
fn workloads_run_and_sweeps_are_deterministic_and_shard() {
    let (ok, out, err) = vmsim(&[
        "run",
        "--json",
        "-w",
        "hotcold",
        "-n",
        "20000",
        "--footprint",
        "4MiB",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["accesses"], 20000);
    assert_eq!(v["workload"], "hotcold");
    let args = [
        "sweep",
        "-w",
        "zipf,seq",
        "--ram",
        "16MiB,32MiB",
        "-p",
        "clock,fifo",
        "-n",
        "5000",
        "--footprint",
        "8MiB",
    ];
    let (ok, all, err) = vmsim(&args);
    assert!(ok, "{err}");
    let (_, again, _) = vmsim(&args);
    assert_eq!(all, again, "a sweep is deterministic");
    let rows: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 8);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, r)| r["run"] == i && r["error"].is_null()));
    // Three shards together are the whole grid.
    let mut joined: Vec<String> = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let mut a = args.to_vec();
        a.extend(["--shard", &shard]);
        let (ok, out, err) = vmsim(&a);
        assert!(ok, "{err}");
        joined.extend(out.lines().map(String::from));
    }
    joined.sort_by_key(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["run"].as_u64());
    assert_eq!(joined.join("\n") + "\n", all);
    let (ok, _, err) = vmsim(&["sweep", "-w", "zipf", "--shard", "4/3"]);
    assert!(!ok && err.contains("--shard"), "{err}");
}

/// A Slurm job array: shards numbered as `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`
/// (from 0, or from 1) each write their rows; `--merge` puts them back in grid order,
/// the bytes of the unsharded sweep, and refuses a set with a shard missing or doubled.
#[test]
fn sharded_outputs_merge_into_the_unsharded_sweep() {
    let grid = [
        "sweep",
        "-w",
        "seq,zipf",
        "--ram",
        "16MiB,32MiB",
        "-p",
        "clock,fifo",
        "-n",
        "3000",
        "--footprint",
        "4MiB",
    ];
    for csv in [false, true] {
        let ext = if csv { "csv" } else { "jsonl" };
        let mut whole_args = grid.to_vec();
        if csv {
            whole_args.push("--csv");
        }
        let (ok, whole, err) = vmsim(&whole_args);
        assert!(ok, "{err}");
        for first in [0, 1] {
            let mut files = Vec::new();
            for k in first..first + 3 {
                let out = tmp(&format!("shard-{first}-{k}.{ext}"));
                let share = format!("{k}/3");
                let mut a = whole_args.clone();
                a.extend(["--shard", &share, "-o", s(&out)]);
                let (ok, _, err) = vmsim(&a);
                assert!(ok, "{err}");
                files.push(out);
            }
            // Given out of order, with and without the grid.
            files.reverse();
            let mut a = whole_args.clone();
            a.push("--merge");
            a.extend(files.iter().map(|f| s(f)));
            let (ok, merged, err) = vmsim(&a);
            assert!(ok, "{err}");
            assert_eq!(merged, whole, "shards from {first}, {ext}");
            let mut bare = vec!["sweep", "--merge"];
            bare.extend(files.iter().map(|f| s(f)));
            let merged_to = tmp(&format!("merged-{first}.{ext}"));
            bare.extend(["-o", s(&merged_to)]);
            let (ok, _, err) = vmsim(&bare);
            assert!(ok, "{err}");
            assert_eq!(std::fs::read_to_string(&merged_to).unwrap(), whole);
            // A shard missing: its gap, or the grid's size, tells.
            let mut a = whole_args.clone();
            a.push("--merge");
            a.extend(files[..2].iter().map(|f| s(f)));
            let (ok, _, err) = vmsim(&a);
            assert!(!ok && err.contains("merge: "), "{err}");
            assert!(
                err.contains("missing") || err.contains("grid has 8 runs"),
                "{err}"
            );
            let (ok, _, err) = vmsim(&["sweep", "--merge", s(&files[0]), s(&files[0])]);
            assert!(!ok && err.contains("is in both"), "{err}");
        }
    }
    let (ok, _, err) = vmsim(&["sweep", "-w", "seq", "--shard", "1/2", "--merge", "x"]);
    assert!(!ok && err.contains("--shard"), "{err}");
    let (ok, _, err) = vmsim(&["sweep", "--merge", "/nonexistent/shard.csv"]);
    assert!(!ok && err.contains("/nonexistent/shard.csv"), "{err}");
}

#[test]
fn plot_draws_interval_series_and_sweeps_as_png_and_svg() {
    let csv = tmp("iv.csv");
    let (ok, _, err) = vmsim(&[
        "run",
        "-w",
        "uniform",
        "-n",
        "20000",
        "--footprint",
        "2MiB",
        "--interval",
        "2000",
        "--interval-file",
        s(&csv),
    ]);
    assert!(ok, "{err}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 11, "{rows}");
    let png = tmp("iv.png");
    let (ok, _, err) = vmsim(&["plot", s(&csv), "-o", s(&png)]);
    assert!(ok, "{err}");
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let sweep = tmp("sw.jsonl");
    let (ok, _, err) = vmsim(&[
        "sweep",
        "-w",
        "zipf",
        "--ram",
        "16MiB,32MiB",
        "-n",
        "3000",
        "--footprint",
        "8MiB",
        "-o",
        s(&sweep),
    ]);
    assert!(ok, "{err}");
    let svg = tmp("sw.svg");
    let (ok, _, err) = vmsim(&["plot", s(&sweep), "-o", s(&svg)]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("<svg") && text.contains("two-list zipf"),
        "legend names the line"
    );
}

/// The recorded docs example over the THP axis: huge pages cut the walks (never >
/// madvise > always), and `plot --x --y` draws chosen columns, one line per mode.
#[test]
fn a_thp_sweep_of_a_recording_shows_fewer_walks_and_plots_chosen_columns() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/thp_tlb.vmb"
    );
    let rows = tmp("thp.csv");
    let (ok, _, err) = vmsim(&[
        "sweep",
        "--trace",
        trace,
        "--thp",
        "never,madvise,always",
        "--tlb-entries",
        "16,64",
        "--csv",
        "-o",
        s(&rows),
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&rows).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = |c: &str| header.iter().position(|h| *h == c).unwrap();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(lines.len(), 6);
    let modes: Vec<&str> = lines.iter().map(|l| l[col("thp")]).collect();
    assert_eq!(modes, ["never", "madvise", "always"].repeat(2));
    let walks: Vec<u64> = lines
        .iter()
        .map(|l| l[col("walks")].parse().unwrap())
        .collect();
    let huge: Vec<u64> = lines
        .iter()
        .map(|l| l[col("thp_fault_alloc")].parse().unwrap())
        .collect();
    assert!(
        walks[0] > 2 * walks[1] && walks[1] > 100 * walks[2],
        "{walks:?}"
    );
    assert_eq!(&huge[..3], [0, 32, 64]);
    let svg = tmp("thp.svg");
    let (ok, _, err) = vmsim(&[
        "plot",
        s(&rows),
        "--x",
        "tlb_entries",
        "--y",
        "walks,tlb_l1_misses",
        "-o",
        s(&svg),
    ]);
    assert!(ok, "{err}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.contains("walks: two-list"), "legend names the lines");
    assert!(chart.contains("thp=madvise"), "one line per mode");
    let (ok, _, err) = vmsim(&["plot", s(&rows), "--x", "thp", "-o", s(&svg)]);
    assert!(
        !ok && err.contains("field thp is not a number: `never`"),
        "{err}"
    );
    let (ok, _, err) = vmsim(&["sweep", "-w", "seq", "--thp", "sometimes"]);
    assert!(!ok && err.contains("sometimes"), "{err}");
}

/// Compiles a small C program, records it under valgrind, and checks that the trace has
/// its mmap call and the pages it touched.
#[test]
fn record_captures_a_real_programs_pages_and_mmap_calls() {
    let have = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("gcc") || !have("valgrind") {
        // .ci/run installs both; say so loudly anywhere else.
        panic!("this test needs gcc and valgrind (apt-get install gcc valgrind)");
    }
    let src = tmp("touch.c");
    std::fs::write(
        &src,
        r#"#include <sys/mman.h>
int main(void) {
    char *p = mmap(0, 40 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (int i = 0; i < 40; i++) p[i * 4096] = (char)i;
    munmap(p, 40 * 4096);
    return 0;
}
"#,
    )
    .unwrap();
    let exe = tmp("touch");
    let cc = Command::new("gcc")
        .args(["-O1", "-o", s(&exe), s(&src)])
        .status()
        .unwrap();
    assert!(cc.success());
    let trace = tmp("touch.vmb");
    let (ok, _, err) = vmsim(&["record", "-o", s(&trace), "--", s(&exe)]);
    assert!(ok, "{err}");
    let text = tmp("touch.vmt");
    let (ok, _, err) = vmsim(&["trace", "convert", s(&trace), s(&text)]);
    assert!(ok, "{err}");
    let events = std::fs::read_to_string(&text).unwrap();
    let mmap = events
        .lines()
        .find(|l| l.starts_with("mmap 1 ") && l.contains(" 0x28000 rw-"))
        .unwrap_or_else(|| panic!("no 40-page mmap in the trace"));
    let base = u64::from_str_radix(
        mmap.split_whitespace()
            .nth(2)
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert!(events
        .lines()
        .any(|l| l == format!("munmap 1 {base:#x} 0x28000")));
    // Every one of the 40 pages got its store.
    for i in 0..40u64 {
        let want = format!("W 1 {:#x}", base + i * 4096);
        assert!(
            events.lines().any(|l| l.starts_with(&want)),
            "no store to page {i}"
        );
    }
    // And the trace runs.
    let (ok, out, err) = vmsim(&["run", "--json", s(&trace)]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["faults"]["minor"].as_u64().unwrap() >= 40);
    assert_eq!(v["faults"]["segv"], 0, "{}", v["replay"]);
}

#[test]
fn allocators_and_collectors_run_from_the_cli() {
    let peak = |allocator: &str| -> u64 {
        let (ok, out, err) = vmsim(&["run", "-w", "alloc", "--allocator", allocator, "--json"]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["error"].is_null(), "{out}");
        assert!(v["memory"]["page_faults"].as_u64().unwrap() > 0);
        v["peak_heap_bytes"].as_u64().unwrap()
    };
    // The documented difference on the default trace: best fit needs no more heap.
    assert!(peak("best-fit") <= peak("first-fit"));
    let (ok, out, err) = vmsim(&[
        "run",
        "-w",
        "gc",
        "--collector",
        "copying",
        "--steps",
        "3000",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["stats"]["collections"].as_u64().unwrap() > 0, "{out}");
    let (ok, _, err) = vmsim(&["run", "-w", "gc", "--collector", "boehm"]);
    assert!(
        !ok && err.contains("--collector: unknown collector `boehm`"),
        "{err}"
    );
}

#[test]
fn curves_and_policies_read_event_traces_per_process_and_page_size() {
    // Process 1 touches pages 0,1,0,2,0,1 (4 KiB) of its region; process 2 others.
    let t = tmp("pages.vmt");
    std::fs::write(
        &t,
        "R 1 0x10000000\nR 1 0x10001000\nR 2 0x10000000\nR 1 0x10000008\nR 1 0x10002000\n\
         R 1 0x10000000\nR 2 0x20000000\nR 1 0x10001ff8 16\n",
    )
    .unwrap();
    let misses = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["policy", "--json", s(&t)];
        a.extend(args);
        let (ok, out, err) = vmsim(&a);
        assert!(ok, "{err}");
        out.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["misses"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    // Process 1: pages 0 1 0 2 0 1 2 (the last access spans pages 1 and 2).
    assert_eq!(
        misses(&["-p", "lru", "-f", "1,2,3", "--pid", "1"]),
        vec![7, 5, 3]
    );
    // Both processes: 9 references to 5 distinct pages.
    assert_eq!(misses(&["-p", "lru", "-f", "5"]), vec![5]);
    // 2 MiB pages: process 1 has one page, process 2 two.
    assert_eq!(
        misses(&["-p", "lru", "-f", "1", "--page-size", "2MiB"]),
        vec![5]
    );
    // The one-pass curve agrees with the separate runs.
    let (ok, out, err) = vmsim(&["mrc", "--json", "-f", "1,2,3", "--pid", "1", s(&t)]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let curve: Vec<u64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["misses"].as_u64().unwrap())
        .collect();
    assert_eq!(curve, vec![7, 5, 3], "{out}");
    let png = tmp("mrc.png");
    let (ok, _, err) = vmsim(&["mrc", s(&t), "--plot", s(&png)]);
    assert!(ok, "{err}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
}

#[test]
fn run_explain_tells_each_access_and_what_the_kernel_did() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/scenario.vmt"
    );
    let (ok, out, err) = vmsim(&["run", "--explain", scenario]);
    assert!(ok, "{err}");
    // The first store: a walk that faults, demand-zero, then a walk that maps.
    let first = out.split("[3] W 1 0x10000000 8").nth(1).unwrap();
    let first = first.split("\n[4]").next().unwrap();
    assert!(
        first.contains("try 1:") && first.contains("try 2:"),
        "{first}"
    );
    assert!(
        first.contains("kernel: demand-zero (a minor fault) handled"),
        "{first}"
    );
    assert!(first.contains("=> PA 0x"), "{first}");
    // The worker's store to the shared page breaks copy-on-write.
    let cow = out.split("[8] W 2 0x10001000 8").nth(1).unwrap();
    assert!(
        cow.contains("kernel: cow-copy (a copy-on-write fault) handled"),
        "{cow}"
    );
    assert!(
        out.contains("[2] mmap 1 0x10000000 0x4000 rw-\n  done"),
        "{out}"
    );
    let (ok, _, err) = vmsim(&["run", "--explain", "-w", "zipf"]);
    assert!(!ok && err.contains("--explain needs a trace"), "{err}");
}

/// The recording of docs/examples/shootdown.c (2,000 munmaps while another thread
/// spins): one TLB shootdown per munmap on two CPUs and none on one, the same faults
/// either way, and a per-CPU table that puts the two threads on CPUs of their own.
#[test]
fn a_recorded_two_thread_program_sends_a_shootdown_per_munmap_on_two_cpus() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/shootdown.vmb"
    );
    let run = |cpus: &str| -> serde_json::Value {
        let (ok, out, err) = vmsim(&["run", trace, "--cpus", cpus, "--json"]);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let (one, two) = (run("1"), run("2"));
    let flushes = |v: &serde_json::Value| v["kernel"]["vmstat"]["nr_tlb_remote_flush"].as_u64();
    assert_eq!(flushes(&one), Some(0));
    let sent = flushes(&two).unwrap();
    assert!((1_900..=2_100).contains(&sent), "{sent} shootdowns");
    assert_eq!(
        two["kernel"]["vmstat"]["nr_tlb_remote_flush_received"].as_u64(),
        Some(sent),
        "two CPUs: each shootdown reaches the other one"
    );
    assert_eq!(one["kernel"]["rusage"], two["kernel"]["rusage"]);
    let cpus = two["kernel"]["cpus"].as_array().unwrap();
    assert_eq!(cpus.len(), 2);
    assert!(cpus.iter().all(|c| c["threads"] == 1), "{cpus:?}");
    assert_eq!(cpus[1]["shootdowns_received"].as_u64(), Some(sent));
    // A run's hardware counters are every CPU's.
    let accesses: u64 = cpus.iter().map(|c| c["accesses"].as_u64().unwrap()).sum();
    assert_eq!(two["hardware"]["accesses"].as_u64(), Some(accesses));
}

/// A machine file's CPU count is checked and named, as `--cpus` is.
#[test]
fn a_machine_with_too_many_cpus_is_refused_by_name() {
    let m = file("many.toml", "preset = \"x86-64\"\n[cpu]\ncount = 65\n");
    let (ok, _, err) = vmsim(&["run", "-m", s(&m), "-w", "seq", "-n", "10"]);
    assert!(!ok);
    assert!(err.contains("cpu.count") && err.contains("65"), "{err}");
    let (ok, _, err) = vmsim(&["run", "--cpus", "0", "-w", "seq", "-n", "10"]);
    assert!(!ok);
    assert!(err.contains("--cpus"), "{err}");
    // Every CPU may run an address space of its own id: 1-bit ids name one.
    let m = file(
        "narrow.toml",
        "preset = \"x86-64\"\n[tlb]\nasid_bits = 1\n[[tlb.array]]\nlevel = 1\n\
         holds = \"unified\"\nentries = 16\nways = 4\npage_sizes = [\"4KiB\"]\n\
         [latency]\ntlb = [1]\n",
    );
    let (ok, _, err) = vmsim(&["run", "-m", s(&m), "--cpus", "2", "-w", "seq", "-n", "10"]);
    assert!(!ok);
    assert!(
        err.contains("tlb.asid_bits") && err.contains("2 CPUs"),
        "{err}"
    );
}
