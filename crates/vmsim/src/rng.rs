//! The seeded generator the built-in workloads and exercises draw from: xorshift64
//! (Marsaglia, 2003). Small, fast and the same on every host, so a seed always gives
//! the same run.

/// A xorshift64 generator. The state must not be zero (use an odd seed).
#[derive(Clone, Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A number in `0..n` skewed toward small values: the smaller of two draws.
    pub(crate) fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }
}

/// Draws from a discrete distribution by inverting its cumulative sums: the first
/// index whose sum reaches `u × total`, exactly as a binary search over the sums finds
/// it, but found from a guide table (Chen and Asau, 1974): for each of as many equal
/// slices of `[0, total)` as there are indices, the first index whose sum reaches the
/// slice's start. A draw looks up its slice and steps forward from there, a step or two
/// on average, so it costs O(1) instead of O(log n), and a seed gives the same draws as
/// the binary search did.
#[derive(Clone, Debug)]
pub(crate) struct Inverse {
    cdf: Vec<f64>,
    guide: Vec<u32>,
    /// Slices per unit of the total.
    scale: f64,
}

impl Inverse {
    /// The distribution whose cumulative sums are `cdf` (non-decreasing, at least one,
    /// fewer than 2^32).
    pub(crate) fn new(cdf: Vec<f64>) -> Inverse {
        let n = cdf.len().max(1);
        let total = cdf.last().copied().unwrap_or(1.0);
        let scale = n as f64 / total;
        let mut guide = Vec::with_capacity(n);
        let mut i = 0usize;
        for b in 0..n {
            let start = b as f64 / scale;
            while i < cdf.len() && cdf[i] < start {
                i += 1;
            }
            guide.push(i as u32);
        }
        Inverse { cdf, guide, scale }
    }

    /// The index of `u` in `[0, 1)`: the first whose sum reaches `u × total`, or the
    /// last.
    #[inline]
    pub(crate) fn index(&self, u: f64) -> usize {
        let total = self.cdf.last().copied().unwrap_or(1.0);
        let x = u * total;
        let mut b = ((x * self.scale) as usize).min(self.guide.len() - 1);
        // Rounding may put `x` just below its slice's start: step back.
        while b > 0 && x < b as f64 / self.scale {
            b -= 1;
        }
        let mut i = self.guide[b] as usize;
        while i < self.cdf.len() && self.cdf[i] < x {
            i += 1;
        }
        i.min(self.cdf.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide table finds what the binary search finds, for skewed and flat sums,
    /// at slice boundaries and at random points.
    #[test]
    fn guided_draws_are_the_binary_searchs() {
        for (n, alpha) in [
            (1usize, 1.0),
            (7, 0.0),
            (1000, 0.9),
            (5000, 1.3),
            (30000, 0.5),
        ] {
            let mut sum = 0.0;
            let cdf: Vec<f64> = (1..=n)
                .map(|r| {
                    sum += 1.0 / (r as f64).powf(alpha);
                    sum
                })
                .collect();
            let inv = Inverse::new(cdf.clone());
            let total = sum;
            let search = |u: f64| cdf.partition_point(|&c| c < u * total).min(n - 1);
            let mut rng = Rng(12345);
            let mut us: Vec<f64> = (0..20000)
                .map(|_| (rng.next() >> 11) as f64 / (1u64 << 53) as f64)
                .collect();
            us.extend((0..n).map(|b| b as f64 / n as f64));
            us.extend(cdf.iter().map(|c| c / total));
            us.extend([0.0, 1.0 - f64::EPSILON]);
            for u in us {
                assert_eq!(inv.index(u), search(u), "n {n} alpha {alpha} u {u}");
            }
        }
    }
}
