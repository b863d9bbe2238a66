//! The whole path under memory pressure, in references per second: the
//! 10-million-reference Zipf(0.9) stream over 1 million pages of `benches/policy.rs`,
//! each reference a store by one process to its page of one large anonymous mapping,
//! through `Kernel::access` (TLB, walk, page fault, CLOCK reclaim reading Accessed bits,
//! swap-out and swap-in accounting to a sparse temporary swap file; the pages hold no
//! data, so no bytes move). RAM is sized so that the frames left for the process are
//! about those at which LRU misses half the stream in replacement-only simulation.
//! One untimed run prints the fault counts to stderr.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};
use vmsim::addr::VirtAddr;
use vmsim::hw::{AccessKind, MachineSpec};
use vmsim::os::{Kernel, KernelConfig, MmapArgs, Program, Prot, ReclaimPolicy};

const REFS: usize = 10_000_000;
const PAGES: u64 = 1_000_000;

#[path = "common/zipf.rs"]
mod zipf;

fn zipf_pages() -> Vec<u64> {
    zipf::zipf_pages(REFS, PAGES as usize, 0.9)
}

/// Boots a machine with about `frames` frames for the process, maps the pages, and
/// replays the stream; returns the time the replay took and the kernel.
fn replay(pages: &[u64], frames: u64) -> (Duration, Kernel) {
    let ram = (frames + 2048) * 4096;
    let spec = MachineSpec::preset("x86-64")
        .unwrap()
        .with_ram(ram, "bench")
        .unwrap();
    let config = KernelConfig {
        swap_bytes: (PAGES + 4096) * 4096,
        reclaim: ReclaimPolicy::Clock,
        ..KernelConfig::default()
    };
    let mut k = Kernel::boot(spec, config);
    let pid = k.spawn(&Program::small("bench", 4096)).unwrap();
    let base = k.mmap(pid, MmapArgs::anon(PAGES * 4096, Prot::RW)).unwrap();
    let t = Instant::now();
    for &p in pages {
        let _ = k.access(pid, VirtAddr(base.0 + p * 4096), AccessKind::Write);
    }
    (t.elapsed(), k)
}

/// One untimed run, its counts to stderr.
fn report(pages: &[u64], frames: u64) {
    let (t, k) = replay(pages, frames);
    eprintln!(
        "full path, {frames} frames: {} refs in {:.2?}; faults {} (swap-ins {}), swap-outs {}, evictions {}, free {}",
        pages.len(),
        t,
        k.counters().faults.iter().sum::<u64>(),
        k.counters().swap_ins,
        k.counters().swap_outs,
        k.counters().pages_reclaimed,
        k.frames().nr_free()
    );
    eprintln!(
        "  translations {}, walks {}, pte reads {}, pages scanned {}",
        k.machine().mmu.counters.total_translations(),
        k.machine().mmu.counters.walks,
        k.machine().mmu.counters.pte_reads,
        k.counters().pages_scanned
    );
}

fn bench(c: &mut Criterion) {
    let pages = zipf_pages();
    // The frame count at which LRU misses about half (benches/policy.rs picks 20,000).
    let frames = 20_000;
    for f in [frames, 10 * frames] {
        report(&pages, f);
    }
    let mut g = c.benchmark_group("full_path");
    g.sample_size(10);
    g.throughput(Throughput::Elements(pages.len() as u64));
    g.bench_function("clock/zipf-10M", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| replay(&pages, frames).0).sum())
    });
    // The same stream with ten times the frames: still about one reference in four faults.
    g.bench_function("clock/zipf-10M-200k-frames", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| replay(&pages, 10 * frames).0).sum())
    });
    // Frames for every page: only first touches fault (demand-zero), the rest are TLB
    // hits and walks; what the path costs when memory suffices.
    let resident = PAGES + 4096;
    report(&pages, resident);
    g.bench_function("clock/zipf-10M-all-resident", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| replay(&pages, resident).0).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
