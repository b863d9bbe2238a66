//! Replacement-only simulation: a stream of page numbers and a number of frames (or a
//! window), and the hits and misses a replacement policy makes of it. What
//! `vmsim policy` runs, and what libCacheSim and course simulators compute.
//!
//! Each policy lives in its own file and implements [`Policy`]; [`simulate`] runs one
//! over a [`PageTrace`] monomorphised (no dynamic dispatch per reference). Page numbers
//! are compacted to dense ids when a trace is read, so every policy keeps its state in
//! plain arrays indexed by page: no hashing per reference.

pub mod analysis;
pub mod arc;
pub mod clock;
pub mod fifo;
pub mod list;
pub mod lru;
pub mod mrc;
pub mod opt;
pub mod pff;
pub mod random;
pub mod trace;
pub mod two_list;
pub mod working_set;

pub use trace::{PageFormat, PageTrace, TraceError};

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A replacement policy, driven one reference at a time.
pub trait Policy {
    /// Whether the number of resident pages varies (working set, PFF) rather than being
    /// fixed by a number of frames.
    const VARIABLE: bool = false;

    /// Handles the reference at index `t` to dense page `p`; returns whether it hit.
    fn access(&mut self, p: u32, t: usize) -> bool;

    /// Pages resident now.
    fn resident(&self) -> usize;
}

/// Frames a policy sizes its structures by: no more than the trace's distinct pages
/// (a policy never holds more; beyond that every size behaves the same), and at least
/// one. Huge frame counts (`-f 1099511627776`) so cost nothing.
#[inline]
pub fn frames_needed(frames: usize, pages: usize) -> usize {
    frames.min(pages).max(1)
}

/// The policies `vmsim policy` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PolicyKind {
    /// First in, first out.
    Fifo,
    /// Exact least recently used.
    Lru,
    /// CLOCK, the loaded page's bit set.
    Clock,
    /// FIFO with reinsertion (CLOCK, the loaded page's bit clear).
    FifoReinsertion,
    /// Multi-bit CLOCK with counters of this many bits (2 to 8).
    ClockBits(u8),
    /// Linux-like active and inactive lists.
    TwoList,
    /// Adaptive replacement cache.
    Arc,
    /// Seeded random.
    Random,
    /// Belady's optimal.
    Opt,
    /// Denning's working set (window τ).
    WorkingSet,
    /// Page-fault frequency.
    Pff,
}

impl PolicyKind {
    /// Every policy, with a multi-bit CLOCK of 2 bits.
    pub const ALL: [PolicyKind; 11] = [
        PolicyKind::Fifo,
        PolicyKind::Lru,
        PolicyKind::Clock,
        PolicyKind::FifoReinsertion,
        PolicyKind::ClockBits(2),
        PolicyKind::TwoList,
        PolicyKind::Arc,
        PolicyKind::Random,
        PolicyKind::Opt,
        PolicyKind::WorkingSet,
        PolicyKind::Pff,
    ];

    /// Whether it runs with a number of frames (not a window or threshold).
    pub fn fixed_frames(self) -> bool {
        !matches!(self, PolicyKind::WorkingSet | PolicyKind::Pff)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyKind::Fifo => f.write_str("fifo"),
            PolicyKind::Lru => f.write_str("lru"),
            PolicyKind::Clock => f.write_str("clock"),
            PolicyKind::FifoReinsertion => f.write_str("fifo-reinsertion"),
            PolicyKind::ClockBits(n) => write!(f, "clock{n}"),
            PolicyKind::TwoList => f.write_str("two-list"),
            PolicyKind::Arc => f.write_str("arc"),
            PolicyKind::Random => f.write_str("random"),
            PolicyKind::Opt => f.write_str("opt"),
            PolicyKind::WorkingSet => f.write_str("ws"),
            PolicyKind::Pff => f.write_str("pff"),
        }
    }
}

impl FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<PolicyKind, String> {
        let k = match s.to_ascii_lowercase().as_str() {
            "fifo" => PolicyKind::Fifo,
            "lru" => PolicyKind::Lru,
            "clock" | "second-chance" => PolicyKind::Clock,
            "fifo-reinsertion" | "fifo_reinsertion" => PolicyKind::FifoReinsertion,
            "two-list" | "2q" | "linux" => PolicyKind::TwoList,
            "arc" => PolicyKind::Arc,
            "random" => PolicyKind::Random,
            "opt" | "min" | "belady" => PolicyKind::Opt,
            "ws" | "working-set" => PolicyKind::WorkingSet,
            "pff" => PolicyKind::Pff,
            other => match other.strip_prefix("clock").and_then(|n| n.parse::<u8>().ok()) {
                Some(n @ 2..=8) => PolicyKind::ClockBits(n),
                _ => {
                    return Err(format!(
                        "unknown policy `{s}` (fifo, lru, clock, fifo-reinsertion, clock2..clock8, two-list, arc, random, opt, ws, pff)"
                    ))
                }
            },
        };
        Ok(k)
    }
}

/// One run's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSpec {
    /// The policy.
    pub policy: PolicyKind,
    /// Frames (fixed-allocation policies).
    pub frames: usize,
    /// τ in references (working set).
    pub window: usize,
    /// References between faults above which PFF shrinks the resident set.
    pub threshold: usize,
    /// Seed (random).
    pub seed: u64,
}

/// What a run gave.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyStats {
    /// The policy.
    pub policy: String,
    /// Frames, for fixed-allocation policies.
    pub frames: Option<usize>,
    /// τ, for the working set.
    pub window: Option<usize>,
    /// The PFF threshold.
    pub threshold: Option<usize>,
    /// References.
    pub references: u64,
    /// Distinct pages in the trace.
    pub pages: u64,
    /// Hits.
    pub hits: u64,
    /// Misses (page faults, the first reference to each page included).
    pub misses: u64,
    /// misses / references.
    pub miss_ratio: f64,
    /// Mean resident pages over the run.
    pub mean_resident: f64,
    /// Most pages resident at once.
    pub max_resident: u64,
}

fn drive<P: Policy>(mut p: P, refs: &[u32], seen: &mut impl FnMut(usize, bool)) -> (u64, f64, u64) {
    let mut hits = 0u64;
    let mut sum = 0u64;
    let mut max = 0usize;
    for (t, &page) in refs.iter().enumerate() {
        let hit = p.access(page, t);
        seen(t, hit);
        hits += hit as u64;
        if P::VARIABLE {
            let r = p.resident();
            sum += r as u64;
            max = max.max(r);
        }
    }
    if !P::VARIABLE {
        max = p.resident();
    }
    let mean = if P::VARIABLE {
        sum as f64 / refs.len().max(1) as f64
    } else {
        max as f64
    };
    (hits, mean, max as u64)
}

/// The runs `vmsim policy` asks for: each fixed-frame policy at every frame count,
/// the working set at every window, PFF at every threshold.
pub fn grid(
    kinds: &[PolicyKind],
    frames: &[usize],
    windows: &[usize],
    thresholds: &[usize],
    seed: u64,
) -> Result<Vec<RunSpec>, String> {
    let mut specs = Vec::new();
    for &k in kinds {
        let base = RunSpec {
            policy: k,
            frames: 0,
            window: 0,
            threshold: 0,
            seed,
        };
        match k {
            PolicyKind::WorkingSet => {
                specs.extend(windows.iter().map(|&w| RunSpec { window: w, ..base }))
            }
            PolicyKind::Pff => specs.extend(thresholds.iter().map(|&t| RunSpec {
                threshold: t,
                ..base
            })),
            _ if frames.is_empty() => {
                return Err(format!(
                    "frames is required for policy {k} (e.g. --frames 1000)"
                ))
            }
            _ => specs.extend(frames.iter().map(|&f| RunSpec { frames: f, ..base })),
        }
    }
    Ok(specs)
}

/// Runs every spec over `trace` in parallel; the results come in the specs' order.
pub fn simulate_all(specs: &[RunSpec], trace: &PageTrace) -> Vec<PolicyStats> {
    use rayon::prelude::*;
    let next = specs
        .iter()
        .any(|s| s.policy == PolicyKind::Opt)
        .then(|| trace.next_use());
    specs
        .par_iter()
        .map(|s| simulate(s, trace, next.as_deref()))
        .collect()
}

/// Results as a table, under a line that names the trace (`name`).
pub fn results_text(name: &str, trace: &PageTrace, results: &[PolicyStats]) -> String {
    let mut t = format!(
        "trace {name}: {} references, {} distinct pages\n\n{:<18} {:>10} {:>12} {:>12} {:>12} {:>10} {:>12}\n",
        trace.len(),
        trace.nr_pages(),
        "policy",
        "frames",
        "references",
        "hits",
        "misses",
        "miss ratio",
        "mean resident"
    );
    for r in results {
        let size = match (r.frames, r.window, r.threshold) {
            (Some(f), ..) => f.to_string(),
            (_, Some(w), _) => format!("τ={w}"),
            (_, _, Some(t)) => format!("T={t}"),
            _ => "-".into(),
        };
        t += &format!(
            "{:<18} {:>10} {:>12} {:>12} {:>12} {:>9.4}% {:>12.1}\n",
            r.policy,
            size,
            r.references,
            r.hits,
            r.misses,
            r.miss_ratio * 100.0,
            r.mean_resident
        );
    }
    t
}

/// Runs `spec` over `trace`. `next_use` is [`PageTrace::next_use`], needed by OPT
/// (computed here when `None`; pass it to share it across runs).
pub fn simulate(spec: &RunSpec, trace: &PageTrace, next_use: Option<&[u32]>) -> PolicyStats {
    simulate_observed(spec, trace, next_use, |_, _| {})
}

/// Like [`simulate`], calling `seen(t, hit)` for every reference (for exercises and
/// explanations; the closure is inlined, so an empty one costs nothing).
pub fn simulate_observed(
    spec: &RunSpec,
    trace: &PageTrace,
    next_use: Option<&[u32]>,
    mut seen: impl FnMut(usize, bool),
) -> PolicyStats {
    let seen = &mut seen;
    let pages = trace.nr_pages();
    let frames = spec.frames.max(1);
    let refs = &trace.refs;
    let (hits, mean, max) = match spec.policy {
        PolicyKind::Fifo => drive(fifo::Fifo::new(frames, pages), refs, seen),
        PolicyKind::Lru => drive(lru::Lru::new(frames, pages), refs, seen),
        PolicyKind::Clock => drive(clock::Clock::new(frames, pages, 1, 1), refs, seen),
        PolicyKind::FifoReinsertion => drive(clock::Clock::new(frames, pages, 1, 0), refs, seen),
        PolicyKind::ClockBits(n) => {
            let max = ((1u16 << n.clamp(1, 8)) - 1) as u8;
            drive(clock::Clock::new(frames, pages, max, 1), refs, seen)
        }
        PolicyKind::TwoList => drive(two_list::TwoList::new(frames, pages), refs, seen),
        PolicyKind::Arc => drive(arc::Arc::new(frames, pages), refs, seen),
        PolicyKind::Random => drive(random::Random::new(frames, pages, spec.seed), refs, seen),
        PolicyKind::Opt => {
            let owned;
            let next = match next_use {
                Some(n) => n,
                None => {
                    owned = trace.next_use();
                    &owned
                }
            };
            drive(opt::Opt::new(frames, pages, next), refs, seen)
        }
        PolicyKind::WorkingSet => drive(
            working_set::WorkingSet::new(spec.window, pages, refs),
            refs,
            seen,
        ),
        PolicyKind::Pff => drive(pff::Pff::new(spec.threshold, pages), refs, seen),
    };
    let n = refs.len() as u64;
    PolicyStats {
        policy: spec.policy.to_string(),
        frames: spec.policy.fixed_frames().then_some(frames),
        window: (spec.policy == PolicyKind::WorkingSet).then_some(spec.window.max(1)),
        threshold: (spec.policy == PolicyKind::Pff).then_some(spec.threshold),
        references: n,
        pages: pages as u64,
        hits,
        misses: n - hits,
        miss_ratio: if n == 0 {
            0.0
        } else {
            (n - hits) as f64 / n as f64
        },
        mean_resident: mean,
        max_resident: max,
    }
}

#[cfg(test)]
mod tests;
