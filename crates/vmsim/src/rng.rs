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
