//! Replacement-only simulation (`vmsim policy`), in references per second, on a
//! synthetic stream of 10 million references over 1 million pages: Zipf(0.9) over
//! shuffled ranks (seeded), with the frame count chosen at setup so that LRU misses
//! about half the references (printed to stderr). Each policy is timed on the whole
//! stream; `load/oracle_general` times decoding the same stream from oracleGeneral
//! bytes in memory (what reading a trace file costs beyond the disk), dense page ids
//! included.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vmsim::policy::trace::{parse_oracle, write_oracle};
use vmsim::policy::{simulate, PageTrace, PolicyKind, RunSpec};

const REFS: usize = 10_000_000;
const PAGES: usize = 1_000_000;

fn zipf_stream() -> PageTrace {
    let alpha = 0.9f64;
    let mut cdf = Vec::with_capacity(PAGES);
    let mut sum = 0.0;
    for r in 1..=PAGES {
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
    // Shuffle the ranks so that popularity says nothing about the page number.
    let mut perm: Vec<u64> = (0..PAGES as u64).collect();
    for i in (1..PAGES).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    let pages = (0..REFS).map(|_| {
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64 * sum;
        let rank = cdf.partition_point(|&c| c < u).min(PAGES - 1);
        0x10_0000 + perm[rank]
    });
    PageTrace::from_pages(pages)
}

fn spec(policy: PolicyKind, frames: usize) -> RunSpec {
    RunSpec {
        policy,
        frames,
        window: 0,
        threshold: 0,
        seed: 1,
    }
}

fn bench(c: &mut Criterion) {
    let trace = zipf_stream();
    let frames = [10_000, 20_000, 50_000, 100_000, 200_000]
        .into_iter()
        .map(|f| {
            (
                f,
                simulate(&spec(PolicyKind::Lru, f), &trace, None).miss_ratio,
            )
        })
        .min_by(|a, b| (a.1 - 0.5).abs().total_cmp(&(b.1 - 0.5).abs()))
        .unwrap();
    eprintln!(
        "stream: {} references, {} distinct pages; {} frames: LRU miss ratio {:.3}",
        trace.len(),
        trace.nr_pages(),
        frames.0,
        frames.1
    );
    let next = trace.next_use();
    let mut g = c.benchmark_group("policy");
    g.sample_size(10);
    g.throughput(Throughput::Elements(trace.len() as u64));
    for k in [
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::Clock,
        PolicyKind::FifoReinsertion,
        PolicyKind::TwoList,
        PolicyKind::Arc,
        PolicyKind::Random,
        PolicyKind::Opt,
    ] {
        g.bench_function(format!("{k}/zipf-10M"), |b| {
            b.iter(|| black_box(simulate(&spec(k, frames.0), &trace, Some(&next)).misses))
        });
    }
    let bytes = write_oracle(&trace);
    g.bench_function("load/oracle_general", |b| {
        b.iter(|| black_box(parse_oracle(&bytes, "bench").unwrap().len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
