//! Miss-ratio curves: the misses of a policy at every memory size.
//!
//! LRU is a stack algorithm (Mattson, Gecsei, Slutz and Traiger, "Evaluation techniques
//! for storage hierarchies", IBM Systems Journal 9(2), 1970): a reference hits in a
//! memory of `c` frames exactly when its stack distance (the number of distinct pages
//! referenced since the previous reference to the same page, itself included) is at
//! most `c`. One pass over the trace computing every distance gives the curve for all
//! sizes at once. The distance is counted with a Fenwick tree over reference times
//! (over 64-bit words of mark bits) that marks, for each page, the time of its latest
//! reference: the distance of a reference at `t` to a page last seen at `s` is the
//! number of marks in `(s, t)` plus one, an O(log n) query. Times are renumbered whenever they reach twice the number of
//! pages (only the latest reference of each page carries a mark), so the tree stays
//! small enough to sit in cache and the renumbering costs O(1) a reference amortised.
//!
//! SHARDS (Waldspurger, Park, Garthwaite and Ahmad, "Efficient MRC Construction with
//! SHARDS", FAST 2015) samples the pages whose hash falls below a threshold (a rate
//! `R`) and runs the same computation on the sampled references only; a sampled
//! distance `d` stands for `d / R` and each sampled reference for `1 / R` references.

use super::trace::PageTrace;
use super::{simulate, PolicyKind, RunSpec};
use serde::Serialize;

/// Stack distances of a trace: how many references had each distance, and how many
/// had none (first references).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackDistances {
    /// `hist[d]`: references at distance `d` (index 0 unused).
    pub hist: Vec<u64>,
    /// References to a page never seen before.
    pub cold: u64,
    /// References.
    pub references: u64,
}

/// A set of positions `0..n` that counts the members at or below a position in
/// O(log(n / 64)): a bit per position, and a Fenwick tree of the number of members in
/// each 64-position word. Both are small enough (n/8 bytes and n/16 bytes) to stay in
/// cache where a Fenwick tree over positions would not.
struct Marks {
    bits: Vec<u64>,
    tree: Vec<i32>,
}

impl Marks {
    fn new(n: usize) -> Marks {
        let words = n.div_ceil(64);
        Marks {
            bits: vec![0; words],
            tree: vec![0; words + 1],
        }
    }

    #[inline]
    fn tree_add(&mut self, word: usize, v: i32) {
        let mut i = word + 1;
        while i < self.tree.len() {
            self.tree[i] += v;
            i += i & i.wrapping_neg();
        }
    }

    #[inline]
    fn set(&mut self, pos: usize) {
        self.bits[pos / 64] |= 1 << (pos % 64);
        self.tree_add(pos / 64, 1);
    }

    #[inline]
    fn clear(&mut self, pos: usize) {
        self.bits[pos / 64] &= !(1 << (pos % 64));
        self.tree_add(pos / 64, -1);
    }

    /// Members at positions `0..=pos`.
    #[inline]
    fn rank(&self, pos: usize) -> i64 {
        let word = pos / 64;
        let mut i = word;
        let mut s = 0i64;
        while i > 0 {
            s += self.tree[i] as i64;
            i &= i - 1;
        }
        let below = self.bits[word] & (u64::MAX >> (63 - pos % 64));
        s + below.count_ones() as i64
    }

    /// Makes the members exactly `0..count`, in O(n / 64).
    fn reset_to_prefix(&mut self, count: usize) {
        self.bits.fill(0);
        for w in 0..count / 64 {
            self.bits[w] = u64::MAX;
        }
        if count % 64 != 0 {
            self.bits[count / 64] = (1u64 << (count % 64)) - 1;
        }
        let n = self.tree.len();
        self.tree.fill(0);
        for i in 1..n {
            self.tree[i] += self.bits[i - 1].count_ones() as i32;
            let parent = i + (i & i.wrapping_neg());
            if parent < n {
                let v = self.tree[i];
                self.tree[parent] += v;
            }
        }
    }
}

impl StackDistances {
    /// Computes every reference's LRU stack distance in one pass.
    pub fn of(trace: &PageTrace) -> StackDistances {
        Self::of_refs(&trace.refs, trace.nr_pages())
    }

    fn of_refs(refs: &[u32], pages: usize) -> StackDistances {
        const NONE: u32 = u32::MAX;
        // Positions of marks: `now` counts up to `cap`, then the live marks (one per page
        // seen) are renumbered 0..live in order.
        let cap = (2 * pages).max(16);
        let mut last = vec![NONE; pages];
        let mut page_at = vec![NONE; cap];
        let mut marks = Marks::new(cap);
        let mut hist = vec![0u64; pages + 1];
        let mut cold = 0;
        let mut live = 0i64;
        let mut now = 0usize;
        for &p in refs {
            if now == cap {
                let mut j = 0;
                for i in 0..cap {
                    let q = page_at[i];
                    if q != NONE {
                        page_at[i] = NONE;
                        page_at[j] = q;
                        last[q as usize] = j as u32;
                        j += 1;
                    }
                }
                marks.reset_to_prefix(j);
                now = j;
            }
            let s = last[p as usize];
            if s == NONE {
                cold += 1;
                live += 1;
            } else {
                let s = s as usize;
                // Marks after s (distinct pages referenced since), plus this page.
                let d = (live - marks.rank(s)) as usize + 1;
                hist[d] += 1;
                marks.clear(s);
                page_at[s] = NONE;
            }
            marks.set(now);
            page_at[now] = p;
            last[p as usize] = now as u32;
            now += 1;
        }
        StackDistances {
            hist,
            cold,
            references: refs.len() as u64,
        }
    }

    /// Misses of LRU with `frames` frames.
    pub fn misses(&self, frames: usize) -> u64 {
        let beyond: u64 = self.hist.iter().skip(frames.saturating_add(1)).sum();
        self.cold + beyond
    }

    /// The misses at every size from 0 to the number of distinct pages (index =
    /// frames): a suffix sum, so the whole curve costs one pass over the histogram.
    pub fn curve(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.hist.len()];
        let mut beyond = 0u64;
        for c in (0..self.hist.len()).rev() {
            out[c] = self.cold + beyond;
            beyond += self.hist[c];
        }
        out
    }
}

/// An LRU curve estimated from a SHARDS sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledCurve {
    /// The sampling rate used.
    pub rate: f64,
    /// References sampled.
    pub sampled: u64,
    /// References in the trace.
    pub references: u64,
    /// The sampled distances.
    pub distances: StackDistances,
}

/// The page-sampling hash: a 64-bit mix, uniform enough for SHARDS' spatial sampling.
fn mix(page: u64) -> u64 {
    let mut x = page.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl SampledCurve {
    /// Samples the pages whose hash is below `rate` of the hash space (0 < rate <= 1)
    /// and computes their stack distances.
    pub fn of(trace: &PageTrace, rate: f64) -> SampledCurve {
        let threshold = (rate.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
        let keep: Vec<bool> = trace.pages.iter().map(|&p| mix(p) <= threshold).collect();
        let refs: Vec<u32> = trace
            .refs
            .iter()
            .copied()
            .filter(|&p| keep[p as usize])
            .collect();
        SampledCurve {
            rate,
            sampled: refs.len() as u64,
            references: trace.len() as u64,
            distances: StackDistances::of_refs(&refs, trace.nr_pages()),
        }
    }

    /// Estimated misses of LRU with `frames` frames: sampled references beyond the
    /// scaled size, scaled back up.
    pub fn misses(&self, frames: usize) -> u64 {
        let scaled = (frames as f64 * self.rate).floor() as usize;
        (self.distances.misses(scaled) as f64 / self.rate).round() as u64
    }
}

/// One point of a curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    /// The policy.
    pub policy: String,
    /// Frames.
    pub frames: usize,
    /// Misses.
    pub misses: u64,
    /// misses / references.
    pub miss_ratio: f64,
}

/// The knee of a decreasing curve: the point farthest below the chord from its first
/// to its last point, with both axes scaled to [0, 1] (the "Kneedle" criterion of
/// Satopää et al., 2011). Returns its index.
pub fn knee(points: &[(f64, f64)]) -> Option<usize> {
    if points.len() < 3 {
        return None;
    }
    let (x0, y0) = points[0];
    let (x1, y1) = points[points.len() - 1];
    let (dx, dy) = (x1 - x0, y0 - y1);
    if dx <= 0.0 || dy <= 0.0 {
        return None;
    }
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            let nx = (x - x0) / dx;
            let ny = (y - y1) / dy;
            // The chord runs from (0, 1) to (1, 0): distance below it is 1 - nx - ny.
            (i, 1.0 - nx - ny)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|&(_, d)| d > 0.0)
        .map(|(i, _)| i)
}

/// Frame counts spread evenly on a log scale from 1 to `max` (at most `n` of them).
pub fn log_sizes(max: usize, n: usize) -> Vec<usize> {
    if max == 0 {
        return Vec::new();
    }
    let mut out: Vec<usize> = (0..n)
        .map(|i| {
            let f = i as f64 / (n.max(2) - 1) as f64;
            (max as f64).powf(f).round() as usize
        })
        .map(|s| s.clamp(1, max))
        .collect();
    out.dedup();
    out
}

/// Why curves cannot be drawn.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CurveError {
    /// The policy has no fixed number of frames (working set, PFF).
    #[error("{0} has no fixed number of frames, so no miss-ratio curve")]
    NoFixedFrames(PolicyKind),
    /// The sample holds no page.
    #[error("a rate of {rate} sampled none of the {pages} distinct pages of {trace}, so it estimates nothing; use a larger rate")]
    EmptySample {
        /// The rate.
        rate: f64,
        /// Distinct pages of the trace.
        pages: usize,
        /// The trace.
        trace: String,
    },
}

impl CurveError {
    /// The parameter at fault (`policy` or `sample`).
    pub fn param(&self) -> &'static str {
        match self {
            CurveError::NoFixedFrames(_) => "policy",
            CurveError::EmptySample { .. } => "sample",
        }
    }
}

/// Miss-ratio curves of several policies over one trace, with each curve's knee.
#[derive(Clone, Debug)]
pub struct Curves {
    /// The trace, as named.
    pub trace: String,
    /// References of the trace.
    pub references: u64,
    /// Distinct pages of the trace.
    pub pages: usize,
    /// The SHARDS sampling rate of LRU's curve (1: exact).
    pub sample: f64,
    /// The frame counts, in order.
    pub sizes: Vec<usize>,
    /// Every (policy, frames) point, curve by curve.
    pub points: Vec<CurvePoint>,
    /// Each curve's name and its knee (the size farthest below the chord, log frames).
    pub knees: Vec<(String, Option<usize>)>,
}

/// The curves of `kinds` over `t` (named `trace`) at `frames`, or at `points` sizes
/// log-spaced up to the number of distinct pages when `frames` is empty. LRU's curve
/// comes from one pass (stack distances), exact or SHARDS-sampled at `sample`; the
/// other policies run once per size, in parallel.
pub fn curves(
    t: &PageTrace,
    trace: &str,
    kinds: &[PolicyKind],
    frames: &[usize],
    points: usize,
    sample: f64,
) -> Result<Curves, CurveError> {
    use rayon::prelude::*;
    if let Some(&k) = kinds.iter().find(|k| !k.fixed_frames()) {
        return Err(CurveError::NoFixedFrames(k));
    }
    let sizes = if frames.is_empty() && points == 1 {
        vec![t.nr_pages()]
    } else if frames.is_empty() {
        log_sizes(t.nr_pages(), points)
    } else {
        frames.to_vec()
    };
    let n = t.len() as u64;
    let ratio = |m: u64| if n == 0 { 0.0 } else { m as f64 / n as f64 };
    let next = kinds.contains(&PolicyKind::Opt).then(|| t.next_use());
    let mut rows: Vec<CurvePoint> = Vec::new();
    for &k in kinds {
        let misses: Vec<u64> = if k == PolicyKind::Lru && sample >= 1.0 {
            let curve = StackDistances::of(t).curve();
            sizes
                .iter()
                .map(|&f| curve[f.min(curve.len() - 1)])
                .collect()
        } else if k == PolicyKind::Lru {
            let s = SampledCurve::of(t, sample);
            if s.sampled == 0 && n > 0 {
                return Err(CurveError::EmptySample {
                    rate: sample,
                    pages: t.nr_pages(),
                    trace: trace.to_string(),
                });
            }
            sizes.iter().map(|&f| s.misses(f)).collect()
        } else {
            sizes
                .par_iter()
                .map(|&f| {
                    let spec = RunSpec {
                        policy: k,
                        frames: f,
                        window: 0,
                        threshold: 0,
                        seed: 1,
                    };
                    simulate(&spec, t, next.as_deref()).misses
                })
                .collect()
        };
        let name = if k == PolicyKind::Lru && sample < 1.0 {
            format!("lru~{sample}")
        } else {
            k.to_string()
        };
        rows.extend(sizes.iter().zip(misses).map(|(&f, m)| CurvePoint {
            policy: name.clone(),
            frames: f,
            misses: m,
            miss_ratio: ratio(m),
        }));
    }
    let mut names: Vec<String> = rows.iter().map(|r| r.policy.clone()).collect();
    names.dedup();
    let knees = names
        .iter()
        .map(|p| {
            let mine: Vec<&CurvePoint> = rows.iter().filter(|r| &r.policy == p).collect();
            let pts: Vec<(f64, f64)> = mine
                .iter()
                .map(|r| ((r.frames as f64).ln(), r.misses as f64))
                .collect();
            (p.clone(), knee(&pts).map(|i| mine[i].frames))
        })
        .collect();
    Ok(Curves {
        trace: trace.to_string(),
        references: n,
        pages: t.nr_pages(),
        sample,
        sizes,
        points: rows,
        knees,
    })
}

impl Curves {
    /// The points of curve `policy`: (frames, miss ratio).
    pub fn curve(&self, policy: &str) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter(|r| r.policy == policy)
            .map(|r| (r.frames as f64, r.miss_ratio))
            .collect()
    }

    /// The knee of curve `policy` as a point (frames, miss ratio), if it has one.
    pub fn knee_point(&self, policy: &str) -> Option<(f64, f64)> {
        let f = self.knees.iter().find(|(p, _)| p == policy)?.1?;
        self.points
            .iter()
            .find(|r| r.policy == policy && r.frames == f)
            .map(|r| (f as f64, r.miss_ratio))
    }

    /// The curves as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "trace": self.trace,
            "references": self.references,
            "pages": self.pages,
            "sample": self.sample,
            "points": self.points,
            "knees": self.knees.iter().map(|(p, k)| (p.clone(), serde_json::json!(k))).collect::<serde_json::Map<_, _>>(),
        })
    }

    /// The curves as CSV rows (policy, frames, misses, miss_ratio).
    pub fn to_csv(&self) -> String {
        let mut t = String::from("policy,frames,misses,miss_ratio\n");
        for r in &self.points {
            t += &format!("{},{},{},{}\n", r.policy, r.frames, r.misses, r.miss_ratio);
        }
        t
    }

    /// The curves as a table: a row per size, a column per curve, knees marked.
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "trace {}: {} references, {} distinct pages\n\n{:>10}",
            self.trace, self.references, self.pages, "frames"
        );
        for (p, _) in &self.knees {
            t += &format!(" {p:>14}");
        }
        t.push('\n');
        for &f in &self.sizes {
            t += &format!("{f:>10}");
            for (p, k) in &self.knees {
                let r = self.points.iter().find(|r| &r.policy == p && r.frames == f);
                let mark = if *k == Some(f) { "*" } else { " " };
                match r {
                    Some(r) => t += &format!(" {:>12.4}%{mark}", r.miss_ratio * 100.0),
                    None => t += &format!(" {:>14}", "-"),
                }
            }
            t.push('\n');
        }
        t += "\nmiss ratios; * marks each curve's knee (farthest below the chord, log frames)\n";
        t
    }
}

#[cfg(test)]
mod tests {
    use super::super::{simulate, PolicyKind, RunSpec};
    use super::*;
    use proptest::prelude::*;

    fn lru(trace: &PageTrace, frames: usize) -> u64 {
        let spec = RunSpec {
            policy: PolicyKind::Lru,
            frames,
            window: 0,
            threshold: 0,
            seed: 0,
        };
        simulate(&spec, trace, None).misses
    }

    #[test]
    fn distances_of_a_small_trace() {
        let t = PageTrace::from_pages([1, 2, 3, 1, 2, 2, 4, 1]);
        let d = StackDistances::of(&t);
        assert_eq!(d.cold, 4);
        // 1 at t=3: {2,3,1} -> 3; 2 at t=4: {3,1,2} -> 3; 2 at t=5: 1; 1 at t=7: {2,4,1} -> 3.
        assert_eq!(d.hist[1..4], [1, 0, 3]);
        assert_eq!(d.curve()[3], 4);
        assert_eq!(d.curve()[2], 7);
    }

    #[test]
    fn the_knee_is_where_the_curve_bends() {
        let pts: Vec<(f64, f64)> = [(1.0, 100.0), (2.0, 40.0), (3.0, 35.0), (4.0, 33.0)].into();
        assert_eq!(knee(&pts), Some(1));
        assert_eq!(log_sizes(1000, 4), [1, 10, 100, 1000]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn one_pass_equals_a_run_per_size(pages in proptest::collection::vec(0u64..40, 1..400)) {
            let t = PageTrace::from_pages(pages);
            let curve = StackDistances::of(&t).curve();
            for frames in 1..=t.nr_pages() + 1 {
                let c = curve[frames.min(curve.len() - 1)];
                prop_assert_eq!(c, lru(&t, frames), "{} frames", frames);
            }
        }
    }

    #[test]
    fn a_full_sample_is_exact() {
        let t = PageTrace::from_pages((0..5000u64).map(|i| (i * 7919) % 613));
        let exact = StackDistances::of(&t);
        let s = SampledCurve::of(&t, 1.0);
        for f in [1, 10, 100, 600] {
            assert_eq!(s.misses(f), exact.misses(f));
        }
    }
}
