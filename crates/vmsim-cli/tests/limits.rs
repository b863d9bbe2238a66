//! End-to-end tests of the limits vmsim puts on what it is given: state files that
//! would lose entries, trace events it must refuse, accesses of any size, workload
//! parameters out of range or beyond the machine, and sizes (RAM, frames) far larger
//! than the host. Each error case must fail cleanly (no panic, no abort, no signal)
//! with a message naming the parameter; each valid case must finish quickly.

mod support;
use support::{file as temp, text};

use std::process::Output;
use std::time::{Duration, Instant};

/// Runs vmsim and returns its output and how long it took.
fn vmsim(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = support::output(args);
    (out, started.elapsed())
}

/// vmsim must refuse `args` cleanly, naming every one of `names` on stderr.
fn refused(args: &[&str], names: &[&str]) -> String {
    let (out, took) = vmsim(args);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "vmsim {args:?} succeeded: {err}");
    let code = out.status.code();
    assert!(
        code.is_some(),
        "vmsim {args:?} was killed by a signal: {err}"
    );
    assert!(
        !matches!(code, Some(101 | 134)),
        "vmsim {args:?} panicked or aborted ({code:?}): {err}"
    );
    for n in names {
        assert!(err.contains(n), "vmsim {args:?} does not name {n}: {err}");
    }
    assert!(
        took < Duration::from_secs(10),
        "vmsim {args:?} took {took:?}"
    );
    err
}

/// vmsim must succeed on `args` within `secs` seconds; returns stdout.
fn accepted(args: &[&str], secs: u64) -> String {
    let (out, took) = vmsim(args);
    let err = text(&out.stderr);
    assert!(out.status.success(), "vmsim {args:?} failed: {err}");
    assert!(
        took < Duration::from_secs(secs),
        "vmsim {args:?} took {took:?}"
    );
    text(&out.stdout)
}

fn belady() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/belady.txt"
    )
    .to_string()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn a_state_file_never_loses_an_entry() {
    let tlb = |entries: &[(u64, u64)]| {
        let mut t = String::from("machine = \"textbook\"\n");
        for (set, tag) in entries {
            t += &format!("[[tlb]]\nset = {set}\ntag = {tag}\nppn = 1\n");
        }
        t
    };
    // Four entries in a set of the 4-way TLB: fine.
    let four = temp("four.toml", &tlb(&[(0, 1), (0, 2), (0, 3), (0, 4)]));
    let out = accepted(&["explain", "--state", four.to_str().unwrap(), "0x40"], 10);
    assert!(out.contains("TLB"), "{out}");
    // A fifth, and a repeated (set, tag): errors naming the file, the entry and the
    // value.
    let five = temp("five.toml", &tlb(&[(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]));
    let five_name = five.to_str().unwrap();
    refused(
        &["explain", "--state", five_name, "0x40"],
        &[five_name, "tlb[4].set", "= 0", "4-way"],
    );
    let twice = temp("twice.toml", &tlb(&[(1, 9), (1, 9)]));
    let twice_name = twice.to_str().unwrap();
    refused(
        &["explain", "--state", twice_name, "0x40"],
        &[twice_name, "tlb[1].tag", "0x9", "tlb[0]"],
    );
    for p in [four, five, twice] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn trace_events_the_kernel_must_refuse_are_counted_and_named() {
    let trace = temp(
        "refused.vmt",
        "#vmsim-text 1
spawn 1
mmap 1 0x10000000 8KiB r-- file=3@0x10
mmap 1 0x20000000 8KiB r-- file=3@0x1000
exec 7
exit 8 0
munmap 9 0x10000000 4KiB
R 1 0x20000000
R 5 0x30000000
",
    );
    let out = accepted(&["run", trace.to_str().unwrap(), "--json"], 10);
    let _ = std::fs::remove_file(&trace);
    let v = json(&out);
    let replay = &v["replay"];
    assert_eq!(replay["failed_events"], 4, "{replay}");
    let failures: Vec<String> = replay["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert!(
        failures[0].contains("file=3@0x10") && failures[0].contains("EINVAL"),
        "{failures:?}"
    );
    for (f, (pid, event)) in
        failures[1..]
            .iter()
            .zip([(7, "exec 7"), (8, "exit 8"), (9, "munmap 9")])
    {
        assert!(
            f.contains(event) && f.contains(&format!("trace pid {pid}")),
            "{f}"
        );
    }
    // Pid 1 (spawned) and pid 5 (first seen in an access) exist; 7, 8 and 9 do not.
    assert_eq!(
        v["processes"].as_array().unwrap().len(),
        2,
        "{}",
        v["processes"]
    );
    assert_eq!(
        replay["signalled_accesses"], 0,
        "the aligned file mapping works"
    );
}

#[test]
fn an_access_of_any_size_translates_every_page() {
    let trace = temp(
        "sizes.vmt",
        "#vmsim-text 1
spawn 1
mmap 1 0x10000000 64MiB rw-
W 1 0x10000000 1048576
W 1 0x10200008 4294967295
",
    );
    // 1 MiB from a page start: 256 pages. 4 GiB - 1 bytes from 8 bytes into a page:
    // 2^20 + 1 pages, past the 64 MiB mapping, so the pages up to its end are
    // translated and the first one beyond (whose SIGSEGV kills the process); the rest
    // of the access is skipped.
    let out = accepted(&["run", trace.to_str().unwrap(), "--json"], 30);
    let _ = std::fs::remove_file(&trace);
    let replay = json(&out)["replay"].clone();
    let mapped_after = (0x14000000u64 - 0x10200000) / 4096;
    assert_eq!(replay["translations"], 256 + mapped_after + 1, "{replay}");
    assert_eq!(replay["signalled_accesses"], 1, "{replay}");
    assert_eq!(
        replay["skipped_accesses"],
        (1u64 << 20) + 1 - mapped_after - 1,
        "{replay}"
    );
}

#[test]
fn synthetic_workload_parameters_are_checked_and_named() {
    for (args, names) in [
        (
            &["-w", "matmul", "--matrix", "4294967296"][..],
            &["matrix", "4294967296"][..],
        ),
        (
            &["-w", "matmul", "--matrix", "4194304"],
            &["matrix", "4194304"],
        ),
        (
            &["-w", "matmul-blocked", "--matrix", "64", "--block", "65"],
            &["block", "65"],
        ),
        (&["-w", "seq", "--footprint", "16EiB"], &["footprint"]),
        (&["-w", "uniform", "--footprint", "200TiB"], &["footprint"]),
        (&["-w", "hash", "--footprint", "63"], &["footprint", "63"]),
        (&["-w", "stride", "--stride", "0"], &["stride"]),
        (&["-w", "zipf", "--alpha", "0"], &["alpha"]),
        (&["-w", "hotcold", "--hot-fraction", "0"], &["hot-fraction"]),
        (&["-w", "seq", "--write-ratio", "2"], &["write-ratio"]),
        (&["-w", "fork", "--workers", "0"], &["workers"]),
        (
            &["-w", "fork", "--workers", "100000"],
            &["workers", "100000"],
        ),
        (
            &["-w", "recursion", "--depth", "18446744073709551615"],
            &["depth"],
        ),
        (&["-w", "recursion", "--frame", "4"], &["frame"]),
    ] {
        let mut all = vec!["run", "-n", "1000"];
        all.extend_from_slice(args);
        refused(&all, names);
    }
    // At their limits they run.
    accepted(&["run", "-w", "matmul", "--matrix", "64", "-n", "1000"], 10);
    accepted(
        &[
            "run",
            "-w",
            "fork",
            "--footprint",
            "64KiB",
            "--workers",
            "3",
            "-n",
            "20000",
        ],
        10,
    );
}

#[test]
fn the_server_workload_is_bounded_by_the_machine() {
    // However it reports it today, `--workers 100000` no longer forks 100000
    // processes: it ends at once, and runs no worker it cannot hold.
    let (out, took) = vmsim(&["run", "--workers", "100000", "-n", "1000", "--json"]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let err = text(&out.stderr);
    assert!(
        !matches!(out.status.code(), None | Some(101 | 134)),
        "{:?}: {err}",
        out.status
    );
    if out.status.success() {
        assert_eq!(json(&text(&out.stdout))["workers"], 0);
    } else {
        assert!(err.contains("workers"), "{err}");
    }
}

/// The server's sizes (`ServerParams::from_bytes`, `try_run_server_with`) and the
/// synthetic workloads' data (`Generator::for_kernel`) are checked against the machine.
#[test]
fn sizes_the_machine_cannot_hold_are_errors() {
    // Data that fits the address space but not the machine (16 GiB, no swap).
    refused(
        &["run", "-n", "1000", "-w", "matmul", "--matrix", "1000000"],
        &["matrix", "1000000"],
    );
    refused(
        &["run", "-n", "1000", "-w", "seq", "--footprint", "2TiB"],
        &["footprint"],
    );
    refused(
        &[
            "run",
            "-n",
            "1000",
            "-w",
            "fork",
            "--ram",
            "64MiB",
            "--footprint",
            "1MiB",
            "--workers",
            "500",
        ],
        &["workers", "500"],
    );
    refused(
        &["run", "--workers", "100000", "-n", "1000"],
        &["workers", "100000"],
    );
    refused(
        &["run", "--buffer", "1TiB", "-n", "1000"],
        &["buffer", "1 TiB"],
    );
    refused(
        &["run", "--cache", "1TiB", "-n", "1000"],
        &["cache", "1 TiB"],
    );
    refused(&["run", "--cache", "0", "-n", "1000"], &["cache"]);
    refused(&["run", "--buffer", "0", "-n", "1000"], &["buffer"]);
}

#[test]
fn terabytes_of_ram_boot_and_run() {
    for ram in ["2TiB", "4TiB", "8TiB", "15TiB"] {
        let out = accepted(&["run", "--ram", ram, "-n", "1000", "--json"], 10);
        assert_eq!(json(&out)["workers"], 4, "--ram {ram}");
    }
    // The reclaim lists too are per-frame metadata that must not be allocated whole.
    for policy in ["two-list", "clock", "fifo"] {
        accepted(
            &[
                "run", "--ram", "8TiB", "-w", "seq", "-n", "1000", "--policy", policy,
            ],
            10,
        );
    }
    let out = accepted(
        &[
            "run",
            "--ram",
            "2TiB",
            "-w",
            "zipf",
            "--footprint",
            "64MiB",
            "-n",
            "20000",
            "--json",
        ],
        10,
    );
    assert_eq!(json(&out)["accesses"], 20000);
}

#[test]
fn a_trillion_frames_cost_a_policy_nothing() {
    let trace = belady();
    for policy in [
        "fifo",
        "clock",
        "clock2",
        "fifo-reinsertion",
        "random",
        "opt",
        "lru",
        "arc",
        "two-list",
    ] {
        let huge = accepted(
            &[
                "policy",
                "-p",
                policy,
                "-f",
                "1099511627776",
                &trace,
                "--json",
            ],
            10,
        );
        let exact = accepted(&["policy", "-p", policy, "-f", "5", &trace, "--json"], 10);
        let (h, e) = (json(huge.trim()), json(exact.trim()));
        assert_eq!(
            h["frames"], 1099511627776u64,
            "{policy}: the count asked for is reported"
        );
        for field in ["hits", "misses", "max_resident"] {
            assert_eq!(h[field], e[field], "{policy}: {field}");
        }
    }
    let out = accepted(
        &[
            "mrc",
            "-p",
            "fifo,opt,lru",
            "-f",
            "1099511627776,3",
            &trace,
            "--csv",
        ],
        10,
    );
    assert!(out.contains("fifo,1099511627776,5,"), "{out}");
}

/// `--memory-max`: the workload runs in a group with that limit. It never holds more
/// pages than the limit; with swap it swaps within the group although RAM has room;
/// without swap the group's OOM killer takes it. A limit under a page is refused.
#[test]
fn memory_max_limits_the_workload_to_its_group() {
    let base = [
        "run",
        "-w",
        "zipf",
        "--footprint",
        "16MiB",
        "--ram",
        "64MiB",
        "-n",
        "100000",
        "--json",
    ];
    let free = json(&accepted(&[&base[..], &["--swap", "64MiB"]].concat(), 60));
    assert_eq!(free["kernel"]["vmstat"]["pswpout"], 0, "RAM holds it all");
    let limited = json(&accepted(
        &[&base[..], &["--swap", "64MiB", "--memory-max", "8MiB"]].concat(),
        60,
    ));
    let k = &limited["kernel"];
    let g = &k["groups"][1];
    assert_eq!(g["name"], "workload");
    assert_eq!(g["max_pages"], 2048);
    assert!(g["peak"].as_u64().unwrap() <= 2048, "{g}");
    assert!(
        k["vmstat"]["pswpout"].as_u64().unwrap() > 0,
        "{}",
        k["vmstat"]
    );
    assert!(
        k["rusage"]["majflt"].as_u64().unwrap() > 0,
        "{}",
        k["rusage"]
    );
    // The group's memory.stat: every fault and swap-out is its processes'; its own
    // reclaim counts there, not in /proc/vmstat's pgscan (as Linux counts it).
    let (st, v) = (&g["stat"], &k["vmstat"]);
    assert_eq!(st["pgfault"], v["pgfault"], "{st}");
    assert_eq!(st["pgmajfault"], v["pgmajfault"], "{st}");
    assert_eq!(st["pswpout"], v["pswpout"], "{st}");
    assert_eq!(st["pswpin"], v["pswpin"], "{st}");
    assert!(st["pgscan"].as_u64().unwrap() > 0 && st["pgsteal"].as_u64().unwrap() > 0);
    assert_eq!(
        v["pgscan_direct"], 0,
        "RAM has room: only the group reclaimed"
    );
    assert!(st["anon"].as_u64().unwrap() <= 2048, "{st}");
    // Two-list reclaim in the group, reading its statistics as they are: its
    // active-list scans are the group's pgrefill, not /proc/vmstat's; its
    // deactivations count in both (as Linux counts them).
    let two_list = [
        "--swap",
        "64MiB",
        "--memory-max",
        "8MiB",
        "--policy",
        "two-list",
    ];
    let two = json(&accepted(
        &[&base[..], &two_list, &["--stats-flush-ms", "0"]].concat(),
        60,
    ));
    let (st, v) = (
        &two["kernel"]["groups"][1]["stat"],
        &two["kernel"]["vmstat"],
    );
    assert!(st["pgrefill"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(v["pgrefill"], 0, "{v}");
    assert!(v["pgdeactivate"].as_u64().unwrap() > 0, "{v}");
    assert!(v["workingset_activate_anon"].as_u64().unwrap() > 0, "{v}");
    // By default they are read as last flushed, and this short run sees no flush: no
    // refault is activated and nothing deactivated, as on Linux in a fresh group.
    let stale = json(&accepted(&[&base[..], &two_list].concat(), 60));
    let sv = &stale["kernel"]["vmstat"];
    assert!(sv["workingset_refault_anon"].as_u64().unwrap() > 0, "{sv}");
    assert_eq!(sv["workingset_activate_anon"], 0, "{sv}");
    assert_eq!(sv["pgdeactivate"], 0, "{sv}");
    // A first flush 300 ms in, where this run's clock gets to: from then on reclaim
    // sees a working set and a short inactive list.
    let early = json(&accepted(
        &[&base[..], &two_list, &["--stats-flush-phase-ms", "300"]].concat(),
        60,
    ));
    let ev = &early["kernel"]["vmstat"];
    assert!(ev["workingset_activate_anon"].as_u64().unwrap() > 0, "{ev}");
    assert!(ev["pgdeactivate"].as_u64().unwrap() > 0, "{ev}");
    refused(
        &["run", "--stats-flush-ms", "soon"],
        &["--stats-flush-ms", "soon"],
    );
    refused(
        &["run", "--stats-flush-phase-ms", "later"],
        &["--stats-flush-phase-ms", "later"],
    );
    let oom = json(&accepted(
        &[&base[..], &["--memory-max", "8MiB"]].concat(),
        60,
    ));
    assert_eq!(oom["kernel"]["groups"][1]["oom_kills"], 1);
    assert_eq!(oom["kernel"]["vmstat"]["oom_kill"], 1);
    refused(
        &["run", "-w", "zipf", "--memory-max", "100"],
        &["--memory-max", "100"],
    );
}

/// `--readahead` and `--page-cache`: a sequential reader of a cold file waits once
/// with readahead and once a page without; a warm cache (or an executable mapping)
/// never waits. A window that is not whole pages is refused.
#[test]
fn readahead_and_the_page_cache_at_start_decide_the_major_faults() {
    let mut trace = String::from("exec-image 1\nmmap 1 0x10000000 1MiB r-- file=1@0\n");
    trace += "mmap 1 0x20000000 64KiB r-x file=2@0\n";
    for i in 0..256u64 {
        trace += &format!("R 1 {:#x} 1\n", 0x1000_0000 + i * 4096);
    }
    for i in 0..16u64 {
        trace += &format!("X 1 {:#x} 1\n", 0x2000_0000 + i * 4096);
    }
    let t = temp("readahead.vmt", &trace);
    let t = t.to_str().unwrap();
    let major = |extra: &[&str]| {
        let out = json(&accepted(&[&["run", t, "--json"][..], extra].concat(), 60));
        out["kernel"]["rusage"]["majflt"].as_u64().unwrap()
    };
    assert_eq!(
        major(&[]),
        1,
        "one wait, then the reader stays behind readahead"
    );
    assert_eq!(
        major(&["--readahead", "0"]),
        256,
        "every page of the data file"
    );
    assert_eq!(major(&["--page-cache", "warm"]), 0);
    refused(
        &["run", "-w", "zipf", "--readahead", "6000"],
        &["--readahead", "6000"],
    );
}

/// `--thread-order`: two threads that each write 8 MiB twice, recorded one after the
/// other, under a 10 MiB limit. In the recorded order each thread's 8 MiB fits while it
/// runs alone, and nothing is swapped back in. By the threads' clocks they run side by
/// side, as on a machine with a CPU for each: 16 MiB are in use at once, and the second
/// pass swaps most of it back in. Every event of the trace is counted either way.
#[test]
fn threads_take_turns_by_their_clocks_unless_told_to_keep_the_recorded_order() {
    let mut trace = String::from("mmap 1 0x10000000 8MiB rw-\nmmap 1 0x20000000 8MiB rw-\n");
    for (tid, base) in [(1, 0x2000_0000u64), (0, 0x1000_0000)] {
        trace += &format!("thread 1 {tid}\n");
        for _ in 0..2 {
            for i in 0..2048u64 {
                trace += &format!("W 1 {:#x} 8\n", base + i * 4096);
            }
        }
    }
    let t = temp("two-threads.vmt", &trace);
    let t = t.to_str().unwrap();
    let run = |order: &str| {
        let args = [
            "run",
            t,
            "--json",
            "--swap",
            "64MiB",
            "--memory-max",
            "10MiB",
            "--thread-order",
            order,
        ];
        json(&accepted(&args, 60))
    };
    let (recorded, clock) = (run("recorded"), run("clock"));
    let pswpin = |r: &serde_json::Value| r["kernel"]["vmstat"]["pswpin"].as_u64().unwrap();
    assert!(pswpin(&recorded) < 100, "{}", recorded["kernel"]["vmstat"]);
    assert!(pswpin(&clock) > 2000, "{}", clock["kernel"]["vmstat"]);
    for r in [&recorded, &clock] {
        assert_eq!(r["replay"]["events"], 4 + 4 * 2048, "{}", r["replay"]);
        assert_eq!(r["replay"]["accesses"], 4 * 2048);
    }
    refused(
        &["run", "-w", "zipf", "--thread-order", "random"],
        &["--thread-order", "random"],
    );
}

/// Kernel memory: under `--memory-max` a process charges its group for its threads'
/// kernel stacks and task structures, its mm structures and one `vm_area_struct` a
/// mapping (`kernel_bytes`, and `stat.kernel` in pages); a second thread adds one
/// stack and task, a mapping one `vm_area_struct`; `--no-kmem` charges none. The
/// numbers are Linux 6.18's object sizes (docs/kernel.md, "Kernel memory").
#[test]
fn a_process_charges_its_group_for_its_kernel_objects_unless_switched_off() {
    let group = |name: &str, lines: &str, extra: &[&str]| {
        let trace = temp(
            name,
            &format!("spawn 1\nmmap 1 0x10000000 16KiB rw-\nW 1 0x10000000 8\n{lines}"),
        );
        let mut a = vec!["run", "--json", "--memory-max", "8MiB", support::s(&trace)];
        a.extend_from_slice(extra);
        json(&accepted(&a, 60))["kernel"]["groups"][1].clone()
    };
    let bytes = |g: &serde_json::Value| g["kernel_bytes"].as_u64().unwrap();
    let one = group("kmem1.vmt", "", &[]);
    let mapped = group("kmem2.vmt", "mmap 1 0x20000000 16KiB rw-\n", &[]);
    let threads = group("kmem3.vmt", "thread 1 1\nW 1 0x10000000 8\n", &[]);
    assert_eq!(bytes(&mapped), bytes(&one) + 256, "{mapped} against {one}");
    assert_eq!(
        bytes(&threads),
        bytes(&one) + 22_464,
        "{threads} against {one}"
    );
    // The process's own objects and one thread at least.
    assert!(bytes(&one) >= 22_464 + 5_760 + 256, "{one}");
    assert_eq!(one["stat"]["kernel"], bytes(&one).div_ceil(4096), "{one}");
    let off = group(
        "kmem4.vmt",
        "thread 1 1\nW 1 0x10000000 8\n",
        &["--no-kmem"],
    );
    assert_eq!(
        (bytes(&off), &off["stat"]["kernel"]),
        (0, &0.into()),
        "{off}"
    );
    assert_eq!(
        threads["charged"].as_u64().unwrap(),
        off["charged"].as_u64().unwrap() + bytes(&threads).div_ceil(4096),
        "{threads} against {off}"
    );
}
