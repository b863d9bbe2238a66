//! The CLI driven with generated flag values: whatever the values, vmsim ends within a
//! bounded time with status 0, or with status 2 and a message; never a panic (101), an
//! abort (134), a signal or silence.

mod support;

use std::time::Duration;

/// A small deterministic generator (64-bit LCG, high bits), so a failure repeats.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next() as usize % from.len()]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const SIZES: &[&str] = &[
    "0",
    "1",
    "4096",
    "6000",
    "64KiB",
    "1MiB",
    "16MiB",
    "64MiB",
    "2TiB",
    "16EiB",
    "18446744073709551615",
    "99999999999999999999",
    "abc",
    "-1",
    "",
    "1.5MiB",
];
const COUNTS: &[&str] = &[
    "0",
    "1",
    "2",
    "7",
    "100",
    "4096",
    "100000",
    "4294967296",
    "18446744073709551615",
    "-3",
    "x",
    "",
];
const FRACTIONS: &[&str] = &[
    "0", "0.5", "1", "1.5", "-0.1", "NaN", "inf", "1e-300", "2", "abc",
];
const WORKLOADS: &[&str] = &[
    "server",
    "hw",
    "alloc",
    "gc",
    "seq",
    "stride",
    "uniform",
    "zipf",
    "hotcold",
    "matmul",
    "matmul-blocked",
    "pointer-chase",
    "hash",
    "fork",
    "recursion",
    "bogus",
];

/// Flags of `vmsim run` and the values they are tried with. Work done per run is kept
/// small by `-n` and the ops, objects and steps counts (an honest run of 2^64 steps
/// takes as long as it takes).
fn run_flags() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("--footprint", SIZES),
        ("--stride", SIZES),
        ("--frame", SIZES),
        ("--ram", SIZES),
        ("--swap", SIZES),
        ("--cache", SIZES),
        ("--buffer", SIZES),
        ("--max-size", SIZES),
        ("--gc-heap", SIZES),
        ("--matrix", COUNTS),
        ("--block", COUNTS),
        ("--depth", COUNTS),
        ("--workers", COUNTS),
        ("--quantum", COUNTS),
        ("--cpus", &["1", "2", "64", "65", "0", "x"]),
        ("--interval", COUNTS),
        ("--max-live", COUNTS),
        ("--seed", COUNTS),
        ("--churn", &["0", "50", "100", "101", "-1", "x"]),
        ("--ops", &["0", "1", "50", "x"]),
        ("--objects", &["0", "1", "50", "x"]),
        ("--steps", &["0", "1", "50", "x"]),
        ("--alpha", FRACTIONS),
        ("--hot-fraction", FRACTIONS),
        ("--hot-probability", FRACTIONS),
        ("--write-ratio", FRACTIONS),
        ("--policy", &["clock", "fifo", "two-list", "lru", ""]),
        (
            "--storage",
            &[
                "nvme",
                "vm",
                "hdd",
                "tape",
                "70us,1200MB/s",
                "20us,2GB/s,500us,100MB/s",
                "20us,2GB/s,500us",
                "10s,1B/s",
                "0ns,18446744073709551615B/s",
                "11s,1GB/s",
                "70us,0B/s",
                ",",
            ],
        ),
        ("--readahead", SIZES),
        ("--page-cache", &["cold", "warm", "hot"]),
        ("--machine", &["x86-64", "sv39", "textbook", "nosuch"]),
        ("--thp", &["always", "madvise", "never", "sometimes"]),
        (
            "--khugepaged",
            &[
                "scan_sleep_millisecs=0",
                "pages_to_scan=1,max_ptes_none=0",
                "pages_to_scan=18446744073709551615,scan_sleep_millisecs=18446744073709551615",
                "pages_to_scan=0",
                "max_ptes=1",
                "x",
            ],
        ),
        (
            "--hugepages",
            &[
                "2MiB:4",
                "1GiB:1,2MiB:1",
                "4MiB:1",
                "1GiB:1000",
                "2MiB",
                "2MiB:x",
                "",
            ],
        ),
    ]
}

fn check(args: &[String], limit: Duration) {
    let out = support::within(args, limit);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = args.join(" ");
    match out.status.code() {
        Some(0) => {}
        Some(2) => assert!(
            err.contains("error"),
            "vmsim {line}: status 2 without a message: {err}"
        ),
        other => panic!("vmsim {line}: status {other:?}\n{err}"),
    }
    assert!(!err.contains("panicked"), "vmsim {line}: {err}");
    assert!(
        err.len() < 4096,
        "vmsim {line}: a {}-byte message",
        err.len()
    );
}

#[test]
fn run_with_generated_flags_ends_with_0_or_2_and_a_message() {
    let mut g = Lcg(0x5eed);
    let flags = run_flags();
    for _ in 0..150 {
        let mut args: Vec<String> = vec!["run".into(), "-n".into()];
        args.push(g.pick(&["1", "10", "500", "2000", "0", "-5"]).into());
        args.push("-w".into());
        args.push(g.pick(WORKLOADS).into());
        for (flag, values) in &flags {
            if g.chance(12) {
                args.push((*flag).into());
                args.push(g.pick(values).into());
            }
        }
        if g.chance(30) {
            args.push("--json".into());
        }
        check(&args, Duration::from_secs(60));
    }
}

#[test]
fn analysis_commands_with_generated_flags_end_with_0_or_2() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/belady.txt"
    );
    let mut g = Lcg(0xfeed);
    for _ in 0..60 {
        let cmd = g.pick(&["policy", "mrc", "wss"]);
        let mut args: Vec<String> = vec![cmd.into(), trace.into()];
        let flags: &[(&str, &[&str])] = match cmd {
            "policy" => &[
                ("-p", &["lru", "fifo", "opt", "ws", "pff", "clock3", "nope"]),
                ("-f", COUNTS),
                ("--window", COUNTS),
                ("--pff-threshold", COUNTS),
                ("--page-size", SIZES),
            ],
            "mrc" => &[
                ("-p", &["lru", "fifo", "opt", "arc", "ws"]),
                ("-f", COUNTS),
                ("--points", COUNTS),
                ("--sample", FRACTIONS),
            ],
            _ => &[
                ("--window", COUNTS),
                ("--interval", COUNTS),
                ("--top", COUNTS),
                ("--region-pages", COUNTS),
            ],
        };
        for (flag, values) in flags {
            if g.chance(50) {
                args.push((*flag).into());
                args.push(g.pick(values).into());
            }
        }
        if cmd == "policy" && !args.iter().any(|a| a == "-f") {
            args.extend(["-f".into(), g.pick(COUNTS).into()]);
        }
        check(&args, Duration::from_secs(60));
    }
}
