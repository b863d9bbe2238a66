//! Replacement-only simulation (`vmsim policy`), in references per second, on a
//! synthetic stream of 10 million references over 1 million pages: Zipf(0.9) over
//! shuffled ranks (seeded), with the frame count chosen at setup so that LRU misses
//! about half the references (printed to stderr). Each policy is timed on the whole
//! stream; `mrc/lru-one-pass` computes the exact LRU miss-ratio curve (every size) in
//! one pass, `mrc/lru-shards-0.01` estimates it from a 1% SHARDS sample and reports its
//! error against the exact curve to stderr; `load/oracle_general` times decoding the same stream from oracleGeneral
//! bytes in memory (what reading a trace file costs beyond the disk), dense page ids
//! included.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vmsim::policy::mrc::{SampledCurve, StackDistances};
use vmsim::policy::trace::{parse_oracle, write_oracle};
use vmsim::policy::{simulate, PageTrace, PolicyKind, RunSpec};

const REFS: usize = 10_000_000;
const PAGES: usize = 1_000_000;

#[path = "common/zipf.rs"]
mod zipf;

fn zipf_stream() -> PageTrace {
    PageTrace::from_pages(
        zipf::zipf_pages(REFS, PAGES, 0.9)
            .into_iter()
            .map(|p| 0x10_0000 + p),
    )
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
    let exact = StackDistances::of(&trace).curve();
    for rate in [0.1, 0.01, 0.001] {
        let s = SampledCurve::of(&trace, rate);
        let worst = [1_000usize, 10_000, 20_000, 100_000, 500_000]
            .iter()
            .map(|&f| {
                (s.misses(f) as f64 - exact[f.min(exact.len() - 1)] as f64).abs()
                    / trace.len() as f64
            })
            .fold(0.0f64, f64::max);
        eprintln!("SHARDS rate {rate}: largest miss-ratio error {worst:.5} at 1K..500K frames");
    }
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
    g.bench_function("mrc/lru-one-pass/zipf-10M", |b| {
        b.iter(|| black_box(StackDistances::of(&trace).curve().len()))
    });
    g.bench_function("mrc/lru-shards-0.01/zipf-10M", |b| {
        b.iter(|| black_box(SampledCurve::of(&trace, 0.01).misses(frames.0)))
    });
    let bytes = write_oracle(&trace);
    g.bench_function("load/oracle_general", |b| {
        b.iter(|| black_box(parse_oracle(&bytes, "bench").unwrap().len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
