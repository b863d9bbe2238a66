//! The kernel's paths, in operations per second, on the x86-64 preset with the default
//! kernel configuration:
//!
//! - `fault/demand_zero`: first writes to 4096 pages of a fresh private anonymous
//!   mapping: one demand-zero fault each (a frame allocated and zeroed, a PTE written,
//!   tables allocated on the way). The `mmap` before and the `munmap` after are not
//!   timed.
//! - `fault/zero_page`: first reads of 4096 fresh pages: each maps the shared zero page.
//! - `fault/cow_copy`: a forked child writes 1024 pages it shares with its parent: one
//!   copy-on-write fault and a 4 KiB copy each. The `fork` and `exit` are not timed.
//! - `access/tlb_hit`: `Kernel::access` on 32 resident pages of the current process:
//!   the whole per-access path of the kernel (process check, counters, MMU fast path).
//! - `access/tlb_hit_run`: the same accesses as one `Kernel::access_run`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use vmsim::addr::VirtAddr;
use vmsim::hw::{AccessKind, MachineSpec};
use vmsim::os::{Kernel, KernelConfig, MmapArgs, Pid, Program, Prot};

const PAGE: u64 = 4096;

fn kernel() -> (Kernel, Pid) {
    let mut k = Kernel::boot(
        MachineSpec::preset("x86-64").unwrap(),
        KernelConfig::default(),
    );
    let pid = k.spawn(&Program::small("bench", PAGE)).unwrap();
    (k, pid)
}

/// Times `touch` over a fresh mapping of `pages` pages, `iters` times.
fn fresh_touches(k: &mut Kernel, pid: Pid, pages: u64, kind: AccessKind, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let a = k.mmap(pid, MmapArgs::anon(pages * PAGE, Prot::RW)).unwrap();
        let t = Instant::now();
        for i in 0..pages {
            black_box(k.access(pid, VirtAddr(a.0 + i * PAGE), kind).unwrap());
        }
        total += t.elapsed();
        k.munmap(pid, a, pages * PAGE).unwrap();
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernel");
    let pages = 4096;
    g.throughput(Throughput::Elements(pages));
    let (mut k, pid) = kernel();
    g.bench_function("fault/demand_zero/x86-64", |b| {
        b.iter_custom(|iters| fresh_touches(&mut k, pid, pages, AccessKind::Write, iters))
    });
    g.bench_function("fault/zero_page/x86-64", |b| {
        b.iter_custom(|iters| fresh_touches(&mut k, pid, pages, AccessKind::Read, iters))
    });

    let cow_pages = 1024;
    g.throughput(Throughput::Elements(cow_pages));
    let (mut k, parent) = kernel();
    let shared = k
        .mmap(parent, MmapArgs::anon(cow_pages * PAGE, Prot::RW))
        .unwrap();
    for i in 0..cow_pages {
        k.write_u64(parent, VirtAddr(shared.0 + i * PAGE), i)
            .unwrap();
    }
    g.bench_function("fault/cow_copy/x86-64", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let child = k.fork(parent).unwrap();
                let t = Instant::now();
                for i in 0..cow_pages {
                    black_box(
                        k.access(child, VirtAddr(shared.0 + i * PAGE), AccessKind::Write)
                            .unwrap(),
                    );
                }
                total += t.elapsed();
                k.exit(child, 0).unwrap();
            }
            total
        })
    });

    let (mut k, pid) = kernel();
    let a = k.mmap(pid, MmapArgs::anon(32 * PAGE, Prot::RW)).unwrap();
    for i in 0..32 {
        k.write_u64(pid, VirtAddr(a.0 + i * PAGE), i).unwrap();
    }
    let mut s = 1u64;
    let addrs: Vec<VirtAddr> = (0..4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            VirtAddr(a.0 + (s % 32) * PAGE + (s >> 40) % PAGE)
        })
        .collect();
    g.throughput(Throughput::Elements(addrs.len() as u64));
    g.bench_function("access/tlb_hit/x86-64", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for &va in &addrs {
                acc ^= k.access(pid, va, AccessKind::Read).map_or(0, |p| p.0);
            }
            black_box(acc)
        })
    });
    let mut out = vec![vmsim::addr::PhysAddr(0); addrs.len()];
    g.bench_function("access/tlb_hit_run/x86-64", |b| {
        b.iter(|| {
            k.access_run(pid, &addrs, AccessKind::Read, &mut out)
                .unwrap();
            black_box(out[addrs.len() - 1])
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
