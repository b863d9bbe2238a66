//! The synthetic stream the replacement benchmarks share: `refs` references drawn
//! Zipf(`alpha`) over `pages` pages, ranks shuffled (so popularity says nothing about
//! the page number), from a fixed seed.

/// The page numbers `0..pages` of the stream, in order.
pub fn zipf_pages(refs: usize, pages: usize, alpha: f64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(pages);
    let mut sum = 0.0;
    for r in 1..=pages {
        sum += 1.0 / (r as f64).powf(alpha);
        cdf.push(sum);
    }
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut perm: Vec<u64> = (0..pages as u64).collect();
    for i in (1..pages).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    (0..refs)
        .map(|_| {
            let u = (next() >> 11) as f64 / (1u64 << 53) as f64 * sum;
            perm[cdf.partition_point(|&c| c < u).min(pages - 1)]
        })
        .collect()
}
