//! Options as people write them, shared by every front end (the `vmsim` command's flags
//! and the Python package's keyword arguments): one parser per kind of value (sizes,
//! counts, fractions, ...), each option's default, and a run's options set by name
//! ([`RunOptions::set`]).
//!
//! Every parser refuses what its kind cannot hold, with a reason, and never rounds or
//! replaces a value; the caller adds the option's name.

use crate::hw::{AccessKind, Privilege};
use crate::os::Overcommit;
use crate::run::{KernelOptions, RunError, RunOptions, WorkloadOptions};
use crate::size::parse_size;
use std::path::PathBuf;

/// Each option's default, as text: the `vmsim` command shows these in `--help`, and the
/// library's `Default` implementations parse them, so both front ends start alike.
pub mod defaults {
    /// The machine.
    pub const MACHINE: &str = "x86-64";
    /// `overcommit`.
    pub const OVERCOMMIT: &str = "heuristic";
    /// `swap` (none).
    pub const SWAP: &str = "0";
    /// `policy`: the reclaim policy.
    pub const RECLAIM: &str = "two-list";
    /// `storage`.
    pub const STORAGE: &str = "vm";
    /// `page_cache`.
    pub const PAGE_CACHE: &str = "cold";
    /// `thp`: transparent huge pages where `madvise` asks, as Linux's default.
    pub const THP: &str = "madvise";
    /// `thp_defrag`: advised VMAs' huge-page faults may reclaim, as Linux's default.
    pub const THP_DEFRAG: &str = "madvise";
    /// `swap_readahead`: the slots around the faulting one, as Linux does with swap on
    /// a device that reports itself rotational.
    pub const SWAP_READAHEAD: &str = "cluster";
    /// `thread_order`: threads take turns by their clocks.
    pub const THREAD_ORDER: &str = "clock";
    /// `stats_flush_ms`: a memory group's statistics are flushed every 2,000 ms of
    /// the run's clock: Linux's 2 s (`FLUSH_TIME`) of real time, on a clock that runs
    /// at about a program's real pace (`os/rstat.rs`).
    pub const STATS_FLUSH_MS: &str = "2000";
    /// `khugepaged`: Linux's settings (none changed).
    pub const KHUGEPAGED: &str = "";
    /// `accesses`.
    pub const ACCESSES: &str = "1000000";
    /// `seed`.
    pub const SEED: &str = "1";
    /// `footprint`.
    pub const FOOTPRINT: &str = "16MiB";
    /// `stride`.
    pub const STRIDE: &str = "4096";
    /// `alpha`.
    pub const ALPHA: &str = "0.9";
    /// `hot_fraction`.
    pub const HOT_FRACTION: &str = "0.1";
    /// `hot_probability`.
    pub const HOT_PROBABILITY: &str = "0.9";
    /// `write_ratio`.
    pub const WRITE_RATIO: &str = "0.25";
    /// `matrix`.
    pub const MATRIX: &str = "256";
    /// `block`.
    pub const BLOCK: &str = "32";
    /// `depth`.
    pub const DEPTH: &str = "1000";
    /// `frame`.
    pub const FRAME: &str = "256";
    /// `quantum`: accesses per turn of a process or thread.
    pub const QUANTUM: &str = "10000";
    /// `allocator`.
    pub const ALLOCATOR: &str = "segregated";
    /// `pattern`.
    pub const PATTERN: &str = "random";
    /// `ops`.
    pub const OPS: &str = "10000";
    /// `max_size`.
    pub const MAX_SIZE: &str = "4096";
    /// `max_live`.
    pub const MAX_LIVE: &str = "1000";
    /// `collector`.
    pub const COLLECTOR: &str = "mark-sweep";
    /// `shape`.
    pub const SHAPE: &str = "tree";
    /// `objects`.
    pub const OBJECTS: &str = "1000";
    /// `steps`.
    pub const STEPS: &str = "10000";
    /// `churn`.
    pub const CHURN: &str = "50";
    /// `gc_heap`.
    pub const GC_HEAP: &str = "256KiB";
    /// Replacement policies (`vmsim policy`, `vmsim mrc`).
    pub const POLICY: &str = "lru";
    /// Working-set windows τ (`vmsim policy`).
    pub const WINDOW: &str = "10000";
    /// PFF thresholds (`vmsim policy`).
    pub const PFF_THRESHOLD: &str = "1000";
    /// The page size an event trace's accesses are counted in (`policy`, `mrc`).
    pub const PAGE_SIZE: &str = "4096";
    /// Log-spaced sizes of a miss-ratio curve without frames (`vmsim mrc`).
    pub const POINTS: &str = "20";
    /// SHARDS sampling rate (`vmsim mrc`; 1: exact).
    pub const SAMPLE: &str = "1";
    /// What an explained access does.
    pub const ACCESS: &str = "read";
    /// The privilege of explained accesses.
    pub const MODE: &str = "user";
}

/// A size in bytes, with an optional unit (`4096`, `4KiB`, `2MiB`, `1GB`).
pub fn size(s: &str) -> Result<u64, String> {
    parse_size(s)
}

/// A size of at least one byte.
pub fn nonzero_size(s: &str) -> Result<u64, String> {
    match size(s)? {
        0 => Err("must be at least 1 byte".into()),
        n => Ok(n),
    }
}

/// A page size: a power of two of at least 64 bytes.
pub fn page_size(s: &str) -> Result<u64, String> {
    let n = size(s)?;
    if !n.is_power_of_two() || n < 64 {
        return Err(format!("{n} is not a power of two of at least 64 bytes"));
    }
    Ok(n)
}

/// A whole number of at least 0 (`1_000` allowed).
pub fn whole(s: &str) -> Result<u64, String> {
    s.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| "not a whole number".to_string())
}

/// A count of at least 1.
pub fn count(s: &str) -> Result<u64, String> {
    match whole(s)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// A count of at least 1 that indexes memory (`usize`).
pub fn count_usize(s: &str) -> Result<usize, String> {
    usize::try_from(count(s)?).map_err(|_| "too large for this host".to_string())
}

/// The questions of an exercise: 1 to 1000 (an exercise is read by a person).
pub fn questions(s: &str) -> Result<usize, String> {
    match count_usize(s)? {
        n if n > 1000 => Err("an exercise has at most 1000 questions".into()),
        n => Ok(n),
    }
}

/// A count of at least 1 that fits 32 bits.
pub fn count_u32(s: &str) -> Result<u32, String> {
    u32::try_from(count(s)?).map_err(|_| format!("must be at most {}", u32::MAX))
}

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s.trim().parse().map_err(|_| "not a number".to_string())?;
    if !x.is_finite() {
        return Err("not a finite number".into());
    }
    Ok(x)
}

/// A fraction from 0 to 1, both included.
pub fn fraction(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if !(0.0..=1.0).contains(&x) {
        return Err("must be from 0 to 1".into());
    }
    Ok(x)
}

/// A rate above 0 and at most 1.
pub fn rate(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if !(x > 0.0 && x <= 1.0) {
        return Err("must be above 0 and at most 1".into());
    }
    Ok(x)
}

/// A finite number of at least 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x < 0.0 {
        return Err("must be at least 0".into());
    }
    Ok(x)
}

/// A percentage from 0 to 100.
pub fn percent(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| "not a whole number".to_string())?;
    if n > 100 {
        return Err("must be from 0 to 100".into());
    }
    Ok(n)
}

/// A switch: `true` or `false` (also `yes`/`no`, `1`/`0`).
pub fn switch(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err("not true or false".into()),
    }
}

/// The overcommit policy (`vm.overcommit_memory` 0, 1, 2): `heuristic`, `always` or
/// `never`.
pub fn overcommit(s: &str) -> Result<Overcommit, String> {
    match s {
        "heuristic" => Ok(Overcommit::Heuristic),
        "always" => Ok(Overcommit::Always),
        "never" => Ok(Overcommit::Never),
        _ => Err(format!(
            "unknown overcommit policy `{s}` (heuristic, always, never)"
        )),
    }
}

/// What the page cache holds at start: `cold` (false) or `warm` (true).
pub fn page_cache_warm(s: &str) -> Result<bool, String> {
    match s {
        "cold" => Ok(false),
        "warm" => Ok(true),
        _ => Err(format!("unknown page cache `{s}` (cold, warm)")),
    }
}

/// When anonymous memory gets transparent huge pages: `always`, `madvise` or `never`.
pub fn thp(s: &str) -> Result<crate::os::thp::ThpMode, String> {
    crate::os::thp::ThpMode::parse(s)
        .ok_or_else(|| format!("unknown THP mode `{s}` (always, madvise, never)"))
}

/// khugepaged's settings: `KEY=VALUE,...` with the sysfs files' names
/// (`scan_sleep_millisecs=100,pages_to_scan=8192`); the others keep Linux's defaults.
pub fn khugepaged(s: &str) -> Result<crate::os::khugepaged::KhugepagedConfig, String> {
    let mut c = crate::os::khugepaged::KhugepagedConfig::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("`{item}` is not KEY=VALUE"));
        };
        let n = whole(value.trim()).map_err(|e| format!("{}: {e}", key.trim()))?;
        c.set(key.trim(), n)?;
    }
    Ok(c)
}

/// hugetlb pools: `SIZE:N,...` (`2MiB:512,1GiB:2`), each a leaf size of the machine
/// and how many pages of it to reserve at boot.
pub fn hugepages(s: &str) -> Result<Vec<(u64, u64)>, String> {
    let mut pools: Vec<(u64, u64)> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((size_text, n)) = item.split_once(':') else {
            return Err(format!("`{item}` is not SIZE:N (2MiB:512)"));
        };
        let bytes = nonzero_size(size_text.trim())?;
        let n = whole(n.trim()).map_err(|e| format!("{item}: {e}"))?;
        match pools.iter_mut().find(|p| p.0 == bytes) {
            Some(p) => p.1 += n,
            None => pools.push((bytes, n)),
        }
    }
    Ok(pools)
}

/// Whether huge-page faults may reclaim: `always`, `defer`, `defer+madvise`, `madvise`
/// or `never`.
pub fn thp_defrag(s: &str) -> Result<crate::os::thp::ThpDefrag, String> {
    crate::os::thp::ThpDefrag::parse(s).ok_or_else(|| {
        format!("unknown THP defrag mode `{s}` (always, defer, defer+madvise, madvise, never)")
    })
}

/// Which slots a swap fault reads ahead: `cluster` or `vma`.
pub fn swap_readahead(s: &str) -> Result<crate::os::swap::SwapReadahead, String> {
    crate::os::swap::SwapReadahead::parse(s)
        .ok_or_else(|| format!("unknown swap readahead `{s}` (cluster, vma)"))
}

/// The order a replay takes threads' accesses in: `clock` or `recorded`.
pub fn thread_order(s: &str) -> Result<crate::interleave::ThreadOrder, String> {
    crate::interleave::ThreadOrder::parse(s)
        .ok_or_else(|| format!("unknown thread order `{s}` (clock, recorded)"))
}

/// What an access does: `read`, `write` or `exec`.
pub fn access(s: &str) -> Result<AccessKind, String> {
    match s {
        "read" => Ok(AccessKind::Read),
        "write" => Ok(AccessKind::Write),
        "exec" => Ok(AccessKind::Execute),
        _ => Err(format!("unknown access `{s}` (read, write, exec)")),
    }
}

/// The privilege of an access: `user` or `supervisor`.
pub fn mode(s: &str) -> Result<Privilege, String> {
    match s {
        "user" => Ok(Privilege::User),
        "supervisor" => Ok(Privilege::Supervisor),
        _ => Err(format!("unknown mode `{s}` (user, supervisor)")),
    }
}

/// The one wording of a refused value: `name: `value`: reason` (see [`refusal`]).
pub fn refused(name: &str, value: &str, reason: &str) -> String {
    format!("{name}: {}", refusal(value, reason))
}

/// Why `value` is refused, quoting it: `` `value`: reason ``, or the reason alone when it
/// already quotes the value, as sizes' reasons do.
pub fn refusal(value: &str, reason: &str) -> String {
    let quoted = format!("`{value}`");
    if reason.contains(&quoted) {
        reason.to_string()
    } else {
        format!("{quoted}: {reason}")
    }
}

/// `parse(text)`, a default that cannot fail (a test parses every one).
fn default<T>(parse: fn(&str) -> Result<T, String>, text: &str) -> T {
    match parse(text) {
        Ok(v) => v,
        Err(e) => panic!("the default `{text}` does not parse: {e}"),
    }
}

impl Default for KernelOptions {
    /// The kernel's switches when no flag is given.
    fn default() -> KernelOptions {
        use defaults as d;
        KernelOptions {
            wx: false,
            zero_page: true,
            overcommit: default(overcommit, d::OVERCOMMIT),
            swap: default(size, d::SWAP),
            swap_file: None,
            force: false,
            reclaim: d::RECLAIM.into(),
            storage: d::STORAGE.into(),
            memory_max: None,
            readahead: None,
            page_cache_warm: default(page_cache_warm, d::PAGE_CACHE),
            fs_metadata: true,
            kmem: true,
            thp: default(thp, d::THP),
            thp_defrag: default(thp_defrag, d::THP_DEFRAG),
            swap_readahead: default(swap_readahead, d::SWAP_READAHEAD),
            thread_order: default(thread_order, d::THREAD_ORDER),
            stats_flush_ms: default(whole, d::STATS_FLUSH_MS),
            stats_flush_phase_ms: None,
            khugepaged: default(khugepaged, d::KHUGEPAGED),
            hugepages: Vec::new(),
        }
    }
}

impl Default for WorkloadOptions {
    /// The workloads' parameters when no flag is given.
    fn default() -> WorkloadOptions {
        use defaults as d;
        WorkloadOptions {
            accesses: default(count, d::ACCESSES),
            seed: default(whole, d::SEED),
            footprint: default(nonzero_size, d::FOOTPRINT),
            stride: default(nonzero_size, d::STRIDE),
            alpha: default(non_negative, d::ALPHA),
            hot_fraction: default(rate, d::HOT_FRACTION),
            hot_probability: default(fraction, d::HOT_PROBABILITY),
            write_ratio: default(fraction, d::WRITE_RATIO),
            matrix: default(count, d::MATRIX),
            block: default(count, d::BLOCK),
            depth: default(count, d::DEPTH),
            frame: default(nonzero_size, d::FRAME),
            workers: None,
            quantum: default(count, d::QUANTUM),
            cache: None,
            buffer: None,
            allocator: d::ALLOCATOR.into(),
            pattern: d::PATTERN.into(),
            ops: default(count, d::OPS),
            max_size: default(nonzero_size, d::MAX_SIZE),
            max_live: default(count, d::MAX_LIVE),
            collector: d::COLLECTOR.into(),
            shape: d::SHAPE.into(),
            objects: default(count, d::OBJECTS),
            steps: default(whole, d::STEPS),
            churn: default(percent, d::CHURN),
            gc_heap: default(nonzero_size, d::GC_HEAP),
        }
    }
}

impl Default for RunOptions {
    /// `vmsim run` with no flag: the server workload on the default machine.
    fn default() -> RunOptions {
        RunOptions {
            trace: None,
            format: None,
            workload: None,
            machine: defaults::MACHINE.into(),
            ram: None,
            cpus: None,
            kernel: KernelOptions::default(),
            params: WorkloadOptions::default(),
            interval: None,
        }
    }
}

impl RunOptions {
    /// The names [`RunOptions::set`] takes, each a `vmsim run` flag without its dashes
    /// (`memory_max` or `memory-max` for `--memory-max`).
    pub const NAMES: [&'static str; 55] = [
        "trace",
        "format",
        "workload",
        "machine",
        "ram",
        "cpus",
        "wx",
        "no_zero_page",
        "overcommit",
        "swap",
        "swap_file",
        "swap_readahead",
        "thread_order",
        "stats_flush_ms",
        "stats_flush_phase_ms",
        "force",
        "policy",
        "storage",
        "memory_max",
        "readahead",
        "page_cache",
        "no_fs_metadata",
        "no_kmem",
        "thp",
        "thp_defrag",
        "khugepaged",
        "hugepages",
        "interval",
        "accesses",
        "seed",
        "footprint",
        "stride",
        "alpha",
        "hot_fraction",
        "hot_probability",
        "write_ratio",
        "matrix",
        "block",
        "depth",
        "frame",
        "workers",
        "quantum",
        "cache",
        "buffer",
        "allocator",
        "pattern",
        "ops",
        "max_size",
        "max_live",
        "collector",
        "shape",
        "objects",
        "steps",
        "churn",
        "gc_heap",
    ];

    /// Sets the option `name` (a `vmsim run` flag without its dashes, with `_` or `-`
    /// between words) to `value` as it would be written on the command line (`32MiB`,
    /// `0.5`, `true` for a switch), checked as the flag checks it. An error names the
    /// option and the value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), RunError> {
        let key = name.trim_start_matches('-').replace('-', "_");
        let Some(&name) = Self::NAMES.iter().find(|n| **n == key) else {
            return Err(RunError::UnknownOption {
                name: name.to_string(),
                names: Self::NAMES.join(", "),
            });
        };
        let bad = |reason: String| RunError::Refused(refused(name, value, &reason));
        let text = || value.to_string();
        let (k, p) = (&mut self.kernel, &mut self.params);
        match name {
            "trace" => self.trace = Some(PathBuf::from(value)),
            "format" => self.format = Some(text()),
            "workload" => self.workload = Some(text()),
            "machine" => self.machine = text(),
            "ram" => self.ram = Some(size(value).map_err(bad)?),
            "cpus" => self.cpus = Some(count_u32(value).map_err(bad)?),
            "wx" => k.wx = switch(value).map_err(bad)?,
            "no_zero_page" => k.zero_page = !switch(value).map_err(bad)?,
            "overcommit" => k.overcommit = overcommit(value).map_err(bad)?,
            "swap" => k.swap = size(value).map_err(bad)?,
            "swap_file" => k.swap_file = Some(PathBuf::from(value)),
            "swap_readahead" => k.swap_readahead = swap_readahead(value).map_err(bad)?,
            "thread_order" => k.thread_order = thread_order(value).map_err(bad)?,
            "stats_flush_ms" => k.stats_flush_ms = whole(value).map_err(bad)?,
            "stats_flush_phase_ms" => k.stats_flush_phase_ms = Some(whole(value).map_err(bad)?),
            "force" => k.force = switch(value).map_err(bad)?,
            "policy" => k.reclaim = text(),
            "storage" => k.storage = text(),
            "memory_max" => k.memory_max = Some(size(value).map_err(bad)?),
            "readahead" => k.readahead = Some(size(value).map_err(bad)?),
            "page_cache" => k.page_cache_warm = page_cache_warm(value).map_err(bad)?,
            "no_fs_metadata" => k.fs_metadata = !switch(value).map_err(bad)?,
            "no_kmem" => k.kmem = !switch(value).map_err(bad)?,
            "thp" => k.thp = thp(value).map_err(bad)?,
            "thp_defrag" => k.thp_defrag = thp_defrag(value).map_err(bad)?,
            "khugepaged" => k.khugepaged = khugepaged(value).map_err(bad)?,
            "hugepages" => k.hugepages = hugepages(value).map_err(bad)?,
            "interval" => self.interval = Some(count(value).map_err(bad)?),
            "accesses" => p.accesses = count(value).map_err(bad)?,
            "seed" => p.seed = whole(value).map_err(bad)?,
            "footprint" => p.footprint = nonzero_size(value).map_err(bad)?,
            "stride" => p.stride = nonzero_size(value).map_err(bad)?,
            "alpha" => p.alpha = non_negative(value).map_err(bad)?,
            "hot_fraction" => p.hot_fraction = rate(value).map_err(bad)?,
            "hot_probability" => p.hot_probability = fraction(value).map_err(bad)?,
            "write_ratio" => p.write_ratio = fraction(value).map_err(bad)?,
            "matrix" => p.matrix = count(value).map_err(bad)?,
            "block" => p.block = count(value).map_err(bad)?,
            "depth" => p.depth = count(value).map_err(bad)?,
            "frame" => p.frame = nonzero_size(value).map_err(bad)?,
            "workers" => p.workers = Some(count_u32(value).map_err(bad)?),
            "quantum" => p.quantum = count(value).map_err(bad)?,
            "cache" => p.cache = Some(nonzero_size(value).map_err(bad)?),
            "buffer" => p.buffer = Some(nonzero_size(value).map_err(bad)?),
            "allocator" => p.allocator = text(),
            "pattern" => p.pattern = text(),
            "ops" => p.ops = count(value).map_err(bad)?,
            "max_size" => p.max_size = nonzero_size(value).map_err(bad)?,
            "max_live" => p.max_live = count(value).map_err(bad)?,
            "collector" => p.collector = text(),
            "shape" => p.shape = text(),
            "objects" => p.objects = count(value).map_err(bad)?,
            "steps" => p.steps = whole(value).map_err(bad)?,
            "churn" => p.churn = percent(value).map_err(bad)?,
            "gc_heap" => p.gc_heap = nonzero_size(value).map_err(bad)?,
            _ => unreachable!("every name in NAMES has an arm"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_refuses_what_it_cannot_hold() {
        assert_eq!(size("4KiB"), Ok(4096));
        assert!(size("abc").is_err());
        assert!(nonzero_size("0").is_err());
        assert_eq!(page_size("2MiB"), Ok(2 << 20));
        assert!(page_size("3000").is_err() && page_size("32").is_err());
        assert_eq!(count("1_000"), Ok(1000));
        assert!(count("0").is_err() && count("-1").is_err() && count("x").is_err());
        assert_eq!(whole("0"), Ok(0));
        assert!(count_u32("4294967296").is_err());
        assert!(questions("1001").is_err() && questions("1000").is_ok());
        assert_eq!(fraction("0"), Ok(0.0));
        assert!(fraction("1.5").is_err() && fraction("NaN").is_err());
        assert!(rate("0").is_err() && rate("1").is_ok());
        assert!(non_negative("-0.1").is_err() && non_negative("inf").is_err());
        assert!(percent("101").is_err() && percent("100").is_ok());
        assert!(switch("true") == Ok(true) && switch("0") == Ok(false));
        assert!(switch("maybe").is_err());
        assert_eq!(overcommit("never"), Ok(Overcommit::Never));
        assert!(overcommit("sometimes").is_err() && page_cache_warm("hot").is_err());
        assert_eq!(access("exec"), Ok(AccessKind::Execute));
        assert!(mode("kernel").is_err());
    }

    #[test]
    fn every_default_parses() {
        // Default::default panics on a default that does not parse.
        let o = RunOptions::default();
        assert_eq!(o.params.accesses, 1_000_000);
        assert_eq!(o.params.footprint, 16 << 20);
        assert_eq!(
            o.kernel.readahead, None,
            "each file's device's, else 128 KiB"
        );
        assert!(o.kernel.zero_page && !o.kernel.page_cache_warm);
        for (d, parse) in [
            (defaults::WINDOW, count as fn(&str) -> Result<u64, String>),
            (defaults::PFF_THRESHOLD, count),
            (defaults::PAGE_SIZE, page_size),
            (defaults::POINTS, count),
        ] {
            assert!(parse(d).is_ok(), "{d}");
        }
        assert!(rate(defaults::SAMPLE).is_ok());
        assert!(access(defaults::ACCESS).is_ok() && mode(defaults::MODE).is_ok());
    }

    #[test]
    fn options_are_set_by_flag_name_and_a_bad_one_is_named() {
        let mut o = RunOptions::default();
        o.set("ram", "32MiB").unwrap();
        o.set("memory-max", "8MiB").unwrap();
        o.set("memory_max", "4194304").unwrap();
        o.set("no_zero_page", "true").unwrap();
        o.set("workload", "zipf").unwrap();
        o.set("accesses", "5000").unwrap();
        assert_eq!(o.ram, Some(32 << 20));
        assert_eq!(o.kernel.memory_max, Some(4 << 20));
        assert!(!o.kernel.zero_page);
        assert_eq!(o.params.accesses, 5000);
        assert_eq!(o.workload.as_deref(), Some("zipf"));
        let e = o.set("ram", "12XB").unwrap_err().to_string();
        assert!(e.starts_with("ram: `12XB`: unknown unit `XB`"), "{e}");
        let e = o.set("accesses", "0").unwrap_err().to_string();
        assert_eq!(e, "accesses: `0`: must be at least 1");
        let e = o.set("rams", "1").unwrap_err().to_string();
        assert!(e.starts_with("unknown option `rams` (trace, "), "{e}");
        for name in RunOptions::NAMES {
            // Every name has an arm (an unreachable! would panic here).
            let _ = RunOptions::default().set(name, "1");
        }
    }
}
