//! What a page stream needs, independent of any policy: the working-set size over time
//! (Denning's W(t, τ): the pages referenced in the last τ references), the histogram
//! of reuse distances (LRU stack distances, in power-of-two buckets), and the hottest
//! pages and regions.

use super::mrc::StackDistances;
use super::trace::PageTrace;
use serde::Serialize;

/// The working-set size sampled along the trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkingSetSeries {
    /// τ, in references.
    pub window: usize,
    /// (reference index, |W(t, τ)|) every `interval` references, and at the end.
    pub points: Vec<(u64, u64)>,
    /// Mean |W| over all references.
    pub mean: f64,
    /// Largest |W|.
    pub max: u64,
}

/// |W(t, τ)| every `interval` references.
pub fn working_set_series(trace: &PageTrace, window: usize, interval: usize) -> WorkingSetSeries {
    let window = window.max(1);
    let interval = interval.max(1);
    const NONE: u32 = u32::MAX;
    let refs = &trace.refs;
    let mut last = vec![NONE; trace.nr_pages()];
    let mut size = 0u64;
    let mut sum = 0u64;
    let mut max = 0u64;
    let mut points = Vec::new();
    for (t, &p) in refs.iter().enumerate() {
        if last[p as usize] == NONE {
            size += 1;
        }
        last[p as usize] = t as u32;
        if t >= window {
            let old = t - window;
            let q = refs[old] as usize;
            if last[q] == old as u32 {
                last[q] = NONE;
                size -= 1;
            }
        }
        sum += size;
        max = max.max(size);
        if (t + 1) % interval == 0 || t + 1 == refs.len() {
            points.push((t as u64 + 1, size));
        }
    }
    WorkingSetSeries {
        window,
        points,
        mean: sum as f64 / refs.len().max(1) as f64,
        max,
    }
}

/// Reuse distances in power-of-two buckets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReuseHistogram {
    /// (lowest distance of the bucket, references): buckets 1, 2-3, 4-7, ...
    pub buckets: Vec<(u64, u64)>,
    /// First references (no reuse).
    pub cold: u64,
}

/// The reuse-distance histogram of `distances`.
pub fn reuse_histogram(distances: &StackDistances) -> ReuseHistogram {
    let mut buckets: Vec<(u64, u64)> = Vec::new();
    for (d, &n) in distances.hist.iter().enumerate().skip(1) {
        if n == 0 {
            continue;
        }
        let low = 1u64 << (63 - (d as u64).leading_zeros());
        match buckets.last_mut() {
            Some(b) if b.0 == low => b.1 += n,
            _ => buckets.push((low, n)),
        }
    }
    ReuseHistogram {
        buckets,
        cold: distances.cold,
    }
}

/// References per page and per region.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Heat {
    /// The most referenced pages: (page number, references).
    pub hottest: Vec<(u64, u64)>,
    /// The least referenced pages: (page number, references).
    pub coldest: Vec<(u64, u64)>,
    /// Pages referenced exactly once.
    pub once: u64,
    /// Pages per region.
    pub region_pages: u64,
    /// The most referenced regions: (first page number, references, distinct pages).
    pub hottest_regions: Vec<(u64, u64, u64)>,
}

/// The `top` hottest and coldest pages, and the hottest regions of `region_pages`
/// aligned pages.
pub fn heat(trace: &PageTrace, top: usize, region_pages: u64) -> Heat {
    let region_pages = region_pages.max(1);
    let mut count = vec![0u64; trace.nr_pages()];
    for &p in &trace.refs {
        count[p as usize] += 1;
    }
    let mut pages: Vec<(u64, u64)> = trace.pages.iter().copied().zip(count).collect();
    // Hottest first; ties by page number so the result is deterministic.
    pages.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let once = pages.iter().filter(|p| p.1 == 1).count() as u64;
    let hottest = pages.iter().take(top).copied().collect();
    let mut coldest: Vec<(u64, u64)> = pages.iter().rev().take(top).copied().collect();
    coldest.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut regions: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    for &(page, n) in &pages {
        let r = regions
            .entry(page / region_pages * region_pages)
            .or_default();
        r.0 += n;
        r.1 += 1;
    }
    let mut hottest_regions: Vec<(u64, u64, u64)> =
        regions.into_iter().map(|(r, (n, d))| (r, n, d)).collect();
    hottest_regions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    hottest_regions.truncate(top);
    Heat {
        hottest,
        coldest,
        once,
        region_pages,
        hottest_regions,
    }
}

/// What a page stream needs: the working set over time, reuse distances and the
/// hottest and coldest pages and regions (`vmsim wss`).
#[derive(Clone, Debug, Serialize)]
pub struct WssReport {
    /// The trace, as named.
    pub trace: String,
    /// References.
    pub references: usize,
    /// Distinct pages.
    pub pages: usize,
    /// The working-set size every `interval` references.
    pub working_set: WorkingSetSeries,
    /// LRU stack distances of the reuses.
    pub reuse: ReuseHistogram,
    /// The hottest and coldest pages and regions.
    pub heat: Heat,
}

impl WssReport {
    /// The report of `t` (named `trace`): working set over `window` references sampled
    /// every `interval`, the `top` hottest and coldest pages, regions of
    /// `region_pages` pages.
    pub fn of(
        t: &PageTrace,
        trace: &str,
        window: usize,
        interval: usize,
        top: usize,
        region_pages: u64,
    ) -> WssReport {
        WssReport {
            trace: trace.to_string(),
            references: t.len(),
            pages: t.nr_pages(),
            working_set: working_set_series(t, window, interval),
            reuse: reuse_histogram(&StackDistances::of(t)),
            heat: heat(t, top, region_pages),
        }
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let (series, reuse, hot) = (&self.working_set, &self.reuse, &self.heat);
        let mut t = String::new();
        let _ = writeln!(
            t,
            "trace {}: {} references, {} distinct pages\n",
            self.trace, self.references, self.pages
        );
        let _ = writeln!(
            t,
            "working set, τ = {} references: mean {:.1} pages, largest {}",
            series.window, series.mean, series.max
        );
        let _ = writeln!(t, "{:>14} {:>10}", "reference", "|W|");
        for (at, w) in &series.points {
            let _ = writeln!(t, "{at:>14} {w:>10}");
        }
        let _ = writeln!(t, "\nLRU stack distance of each reuse (d: the page was the d-th most recently used, d-1 other pages between uses)");
        let _ = writeln!(t, "{:>14} {:>12}", "distance", "references");
        for (low, n) in &reuse.buckets {
            let high = low * 2 - 1;
            let label = if high == *low {
                low.to_string()
            } else {
                format!("{low}-{high}")
            };
            let _ = writeln!(t, "{label:>14} {n:>12}");
        }
        let _ = writeln!(t, "{:>14} {:>12}", "first use", reuse.cold);
        let _ = writeln!(t, "\nhottest pages");
        for (p, n) in &hot.hottest {
            let _ = writeln!(t, "{p:>#18x} {n:>12}");
        }
        let _ = writeln!(t, "coldest pages ({} referenced once)", hot.once);
        for (p, n) in &hot.coldest {
            let _ = writeln!(t, "{p:>#18x} {n:>12}");
        }
        let _ = writeln!(
            t,
            "hottest regions of {} pages (first page, references, pages touched)",
            hot.region_pages
        );
        for (r, n, d) in &hot.hottest_regions {
            let _ = writeln!(t, "{r:>#18x} {n:>12} {d:>8}");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::super::{simulate, PolicyKind, RunSpec};
    use super::*;

    #[test]
    fn the_series_follows_the_working_set_policy() {
        let t = PageTrace::from_pages((0..2000u64).map(|i| (i * i + 7 * i) % 97));
        let s = working_set_series(&t, 50, 1);
        let spec = RunSpec {
            policy: PolicyKind::WorkingSet,
            frames: 0,
            window: 50,
            threshold: 0,
            seed: 0,
        };
        let r = simulate(&spec, &t, None);
        assert_eq!(s.max, r.max_resident);
        assert!((s.mean - r.mean_resident).abs() < 1e-9);
        assert_eq!(s.points.len(), 2000);
    }

    #[test]
    fn reuse_buckets_and_heat() {
        let t = PageTrace::from_pages([1, 2, 1, 3, 4, 5, 1, 1, 9]);
        let h = reuse_histogram(&StackDistances::of(&t));
        // Distances: 1 at t=2 -> 2; 1 at t=6 -> 4; 1 at t=7 -> 1.
        assert_eq!(h.buckets, [(1, 1), (2, 1), (4, 1)]);
        assert_eq!(h.cold, 6);
        let heat = heat(&t, 2, 4);
        assert_eq!(heat.hottest, [(1, 4), (2, 1)]);
        assert_eq!(heat.once, 5);
        assert_eq!(heat.hottest_regions[0], (0, 6, 3), "pages 1, 2 and 3");
    }
}
