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
pub mod ids;
pub mod list;
pub mod lru;
pub mod mrc;
pub mod opt;
pub mod pff;
pub mod queues;
pub mod random;
pub mod trace;
pub mod two_list;
pub mod working_set;

pub use trace::{PageFormat, PageStream, PageTrace, TraceError};

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A replacement policy, driven one reference at a time.
pub trait Policy {
    /// Whether the number of resident pages varies (working set, PFF) rather than being
    /// fixed by a number of frames.
    const VARIABLE: bool = false;

    /// Whether [`Policy::access`] reads `prev`, each reference's previous use (see
    /// [`trace::prev_uses`]); the driver gives 0 to a policy that does not.
    const NEEDS_PREV: bool = false;

    /// Handles the reference at index `t` to dense page `p`, whose page was referenced
    /// last at index `prev - 1` (`prev` 0: never, or the policy does not need to know);
    /// returns whether it hit.
    fn access(&mut self, p: u32, t: usize, prev: u32) -> bool;

    /// Pages resident now.
    fn resident(&self) -> usize;

    /// Makes room for page ids below `pages`: a stream learns its pages as it goes, so
    /// a policy run on one starts with none and grows before each block.
    fn grow(&mut self, pages: usize);

    /// Hints the host to bring into its cache what `access(p, _)` will read first: the
    /// driver calls it for the reference [`ids::AHEAD`] on, so that looking a page up
    /// waits on memory less often. No effect on anything computed.
    #[inline(always)]
    fn prefetch(&self, _p: u32) {}
}

/// Frames a policy sizes its structures by: no more than the trace's distinct pages
/// (a policy never holds more; beyond that every size behaves the same), and at least
/// one. Huge frame counts (`-f 1099511627776`) so cost nothing.
#[inline]
pub fn frames_needed(frames: usize, pages: usize) -> usize {
    frames.min(pages).max(1)
}

/// The frames a policy of `frames` frames keeps: at least one, and no more than a dense
/// id can name (more than that behaves the same, since a trace never has more pages).
#[inline]
pub fn capacity(frames: usize) -> usize {
    frames.clamp(1, ids::MAX_PAGES)
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

    /// Whether it decides from the past alone, so that it can run as a trace is read
    /// ([`simulate_stream`]); OPT needs the future and the working set looks back a
    /// window, so they run on a whole [`PageTrace`].
    pub fn online(self) -> bool {
        !matches!(self, PolicyKind::Opt | PolicyKind::WorkingSet)
    }

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

/// Hits and resident-set sizes counted over a run.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    hits: u64,
    /// Sum over references of the resident pages (variable-size policies).
    sum: u64,
    /// Most pages resident at once (variable-size policies).
    max: usize,
}

/// Runs `p` over `refs`, the references from index `t0` on, whose previous uses are
/// `prevs` (read only if the policy [needs them](Policy::NEEDS_PREV)).
#[inline(always)]
fn drive<P: Policy>(
    p: &mut P,
    refs: &[u32],
    prevs: &[u32],
    t0: usize,
    tally: &mut Tally,
    seen: &mut impl FnMut(usize, bool),
) {
    if P::NEEDS_PREV {
        assert_eq!(
            prevs.len(),
            refs.len(),
            "a previous use for every reference"
        );
    }
    for (i, &page) in refs.iter().enumerate() {
        if let Some(&ahead) = refs.get(i + ids::AHEAD) {
            p.prefetch(ahead);
        }
        let t = t0 + i;
        let prev = if P::NEEDS_PREV { prevs[i] } else { 0 };
        let hit = p.access(page, t, prev);
        seen(t, hit);
        tally.hits += hit as u64;
        if P::VARIABLE {
            let r = p.resident();
            tally.sum += r as u64;
            tally.max = tally.max.max(r);
        }
    }
}

/// (hits, mean resident, most resident) of `p` after `n` references.
fn totals<P: Policy>(p: &P, tally: &Tally, n: usize) -> (u64, f64, u64) {
    if P::VARIABLE {
        (
            tally.hits,
            tally.sum as f64 / n.max(1) as f64,
            tally.max as u64,
        )
    } else {
        let r = p.resident();
        (tally.hits, r as f64, r as u64)
    }
}

/// A policy that decides from the past alone, ready to run block by block.
enum Online {
    Fifo(fifo::Fifo),
    Lru(lru::Lru),
    Clock(clock::Clock),
    TwoList(two_list::TwoList),
    Arc(arc::Arc),
    Random(random::Random),
    Pff(pff::Pff),
}

/// `$body` with `$p` bound to the policy inside `$online`, whatever its type.
macro_rules! each_online {
    ($online:expr, $p:ident => $body:expr) => {
        match $online {
            Online::Fifo($p) => $body,
            Online::Lru($p) => $body,
            Online::Clock($p) => $body,
            Online::TwoList($p) => $body,
            Online::Arc($p) => $body,
            Online::Random($p) => $body,
            Online::Pff($p) => $body,
        }
    };
}

impl Online {
    /// The policy of `spec` over `pages` pages, or `None` for OPT and the working set.
    fn new(spec: &RunSpec, pages: usize) -> Option<Online> {
        let frames = spec.frames;
        Some(match spec.policy {
            PolicyKind::Fifo => Online::Fifo(fifo::Fifo::new(frames, pages)),
            PolicyKind::Lru => Online::Lru(lru::Lru::new(frames, pages)),
            PolicyKind::Clock => Online::Clock(clock::Clock::new(frames, pages, 1, 1)),
            PolicyKind::FifoReinsertion => Online::Clock(clock::Clock::new(frames, pages, 1, 0)),
            PolicyKind::ClockBits(n) => {
                let max = ((1u16 << n.clamp(1, 8)) - 1) as u8;
                Online::Clock(clock::Clock::new(frames, pages, max, 1))
            }
            PolicyKind::TwoList => Online::TwoList(two_list::TwoList::new(frames, pages)),
            PolicyKind::Arc => Online::Arc(arc::Arc::new(frames, pages)),
            PolicyKind::Random => Online::Random(random::Random::new(frames, pages, spec.seed)),
            PolicyKind::Pff => Online::Pff(pff::Pff::new(spec.threshold, pages)),
            PolicyKind::Opt | PolicyKind::WorkingSet => return None,
        })
    }

    fn grow(&mut self, pages: usize) {
        each_online!(self, p => p.grow(pages))
    }

    /// Whether the policy of `spec` keeps `pages` distinct pages (ARC at over
    /// [`arc::MAX_FRAMES`] frames does not keep any number).
    fn fits(spec: &RunSpec, pages: usize) -> Result<(), (usize, usize)> {
        match spec.policy {
            PolicyKind::Arc if !arc::fits(spec.frames, pages) => {
                Err((queues::MAX_LIVE, arc::MAX_FRAMES))
            }
            _ => Ok(()),
        }
    }

    /// Whether the policy needs each reference's previous use.
    fn needs_prev(&self) -> bool {
        matches!(self, Online::Lru(_))
    }

    fn run(
        &mut self,
        refs: &[u32],
        prevs: &[u32],
        t0: usize,
        tally: &mut Tally,
        seen: &mut impl FnMut(usize, bool),
    ) {
        each_online!(self, p => drive(p, refs, prevs, t0, tally, seen))
    }

    fn totals(&self, tally: &Tally, n: usize) -> (u64, f64, u64) {
        each_online!(self, p => totals(p, tally, n))
    }
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
    let next = needs_next_use(specs).then(|| trace.next_use());
    simulate_all_with(specs, trace, next.as_deref())
}

/// Whether a run of `specs` needs each reference's next use (OPT does).
fn needs_next_use(specs: &[RunSpec]) -> bool {
    specs.iter().any(|s| s.policy == PolicyKind::Opt)
}

/// [`simulate_all`] with the trace's next uses given (`None` if no spec needs them).
fn simulate_all_with(
    specs: &[RunSpec],
    trace: &PageTrace,
    next: Option<&[u32]>,
) -> Vec<PolicyStats> {
    use rayon::prelude::*;
    specs.par_iter().map(|s| simulate(s, trace, next)).collect()
}

/// Runs every spec over `stream`, reading it once. When every policy is
/// [`online`](PolicyKind::online), one thread reads and numbers the pages while the
/// policies run over the blocks already read (in parallel with each other when there
/// are several), and no more than a few blocks are held; otherwise the trace is read
/// whole first. Gives the results in the specs' order, the number of references and
/// the number of distinct pages.
pub fn simulate_stream<R: std::io::BufRead + Send>(
    specs: &[RunSpec],
    stream: PageStream<R>,
) -> Result<(Vec<PolicyStats>, u64, usize), TraceError> {
    let path = stream.path().to_string();
    let too_many = |pages: usize| {
        specs.iter().find_map(|spec| {
            Online::fits(spec, pages)
                .err()
                .map(|(max, frames)| TraceError::TooManyPagesFor {
                    path: path.clone(),
                    max,
                    policy: spec.policy.to_string(),
                    frames,
                })
        })
    };
    if !specs.iter().all(|s| s.policy.online()) {
        let (trace, next) = if needs_next_use(specs) {
            let (trace, next) = stream.collect_with_next_use()?;
            (trace, Some(next))
        } else {
            (stream.collect()?, None)
        };
        let (n, pages) = (trace.len() as u64, trace.nr_pages());
        if let Some(e) = too_many(pages) {
            return Err(e);
        }
        return Ok((simulate_all_with(specs, &trace, next.as_deref()), n, pages));
    }
    use rayon::prelude::*;
    let mut runs: Vec<(Online, Tally)> = specs
        .iter()
        .map(|s| (Online::new(s, 0).expect("online"), Tally::default()))
        .collect();
    let want_prev = runs.iter().any(|(p, _)| p.needs_prev());
    let mut t0 = 0;
    let mut refused = None;
    let (n, pages) = stream.read_ahead(want_prev, |refs, prevs, pages| {
        if refused.is_none() {
            refused = too_many(pages);
        }
        if refused.is_some() {
            return;
        }
        let run = |(p, tally): &mut (Online, Tally)| {
            p.grow(pages);
            p.run(refs, prevs, t0, tally, &mut |_, _| {});
        };
        if runs.len() == 1 {
            runs.iter_mut().for_each(run);
        } else {
            runs.par_iter_mut().for_each(run);
        }
        t0 += refs.len();
    })?;
    if let Some(e) = refused {
        return Err(e);
    }
    let pages = pages.len();
    let results = specs
        .iter()
        .zip(&runs)
        .map(|(spec, (p, tally))| stats(spec, n, pages, p.totals(tally, n as usize)))
        .collect();
    Ok((results, n, pages))
}

/// Results as a table, under a line that names the trace (`name`) and gives its
/// `references` and distinct `pages`.
pub fn results_text(name: &str, references: u64, pages: usize, results: &[PolicyStats]) -> String {
    let mut t = format!(
        "trace {name}: {references} references, {pages} distinct pages\n\n{:<18} {:>10} {:>12} {:>12} {:>12} {:>10} {:>12}\n",
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
    let refs = &trace.refs;
    let n = refs.len();
    let mut tally = Tally::default();
    let totals = match spec.policy {
        PolicyKind::Opt => {
            let owned;
            let next = match next_use {
                Some(n) => n,
                None => {
                    owned = trace.next_use();
                    &owned
                }
            };
            let mut p = opt::Opt::new(spec.frames, next);
            drive(&mut p, refs, &[], 0, &mut tally, seen);
            totals(&p, &tally, n)
        }
        PolicyKind::WorkingSet => {
            let mut p = working_set::WorkingSet::new(spec.window, pages, refs);
            drive(&mut p, refs, &[], 0, &mut tally, seen);
            totals(&p, &tally, n)
        }
        _ => {
            let mut p = Online::new(spec, pages).expect("online");
            let prevs = if p.needs_prev() {
                trace.prev_use()
            } else {
                Vec::new()
            };
            p.run(refs, &prevs, 0, &mut tally, seen);
            p.totals(&tally, n)
        }
    };
    stats(spec, n as u64, pages, totals)
}

/// The stats of a run of `spec` over `n` references to `pages` pages.
fn stats(spec: &RunSpec, n: u64, pages: usize, (hits, mean, max): (u64, f64, u64)) -> PolicyStats {
    let frames = spec.frames.max(1);
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
