//! `Mmu::translate` throughput, in translations per second.
//!
//! - `tlb_hit/x86-64`: 4096 loads spread over 32 mapped 4 KiB pages, all resident in the
//!   L1 DTLB of the x86-64 preset (Skylake-like: 64 entries, 4 ways).
//! - `tlb_hit_run/x86-64`: the same loads through `Mmu::translate_run`, the entry point
//!   for a run of accesses of one kind (what a trace replay feeds it).
//! - `tlb_hit_mixed/x86-64`: the same pages, loads, stores and fetches interleaved
//!   (stores and fetches to pages mapped RWX).
//! - `walk/x86-64`: uniformly random loads over 64 Ki mapped 4 KiB pages (256 MiB), far
//!   beyond the 1536-entry L2 TLB: nearly every access misses both TLB levels and walks
//!   (the PDE cache usually hits).
//! - `walk_no_pwc/x86-64`: the same with the page-walk caches removed: four PTE reads a walk.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vmsim::addr::{Pfn, PhysAddr, VirtAddr};
use vmsim::hw::{AccessKind, Flags, Machine, MachineSpec, PageTable, Privilege, SimpleFrames};

fn machine(spec: MachineSpec, pages: u64) -> Machine {
    let mut m = Machine::new(spec);
    let n = m.ram.nr_frames();
    let mut frames = SimpleFrames::new(n / 2, n);
    let p = m.spec.paging;
    let pt = PageTable::new(&p, &mut m.ram, &mut frames, 1).unwrap();
    for i in 0..pages {
        let va = VirtAddr(0x1000_0000 + i * 4096);
        pt.map(
            &p,
            &mut m.ram,
            &mut frames,
            va,
            Pfn(i + 16),
            1,
            Flags::RWX | Flags::USER,
            Flags::RWX | Flags::USER,
        )
        .unwrap();
    }
    m.mmu.set_context(pt.root(), 1).unwrap();
    m
}

fn addresses(n: usize, pages: u64, seed: u64) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            0x1000_0000 + (s % pages) * 4096 + (s >> 40) % 4096
        })
        .collect()
}

/// Translates every address as a user access, cycling through `kinds` (a constant
/// length, so choosing the kind is a mask, not a division); returns a value
/// that depends on every result so nothing is optimised away.
fn sweep<const N: usize>(m: &mut Machine, addrs: &[u64], kinds: &[AccessKind; N]) -> u64 {
    let mut acc = 0u64;
    for (i, &a) in addrs.iter().enumerate() {
        acc ^= m
            .translate(VirtAddr(a), kinds[i % N], Privilege::User)
            .map_or(0, |p| p.0);
    }
    black_box(acc)
}

/// Translates every address as a user load through `Mmu::translate_run`, falling back
/// to `translate` for whatever a run stops at.
fn sweep_runs(m: &mut Machine, addrs: &[VirtAddr], out: &mut [PhysAddr]) -> u64 {
    let mut i = 0;
    while i < addrs.len() {
        i += m.mmu.translate_run(
            &addrs[i..],
            AccessKind::Read,
            Privilege::User,
            &mut out[i..],
        );
        if i < addrs.len() {
            out[i] = m
                .translate(addrs[i], AccessKind::Read, Privilege::User)
                .unwrap_or(PhysAddr(0));
            i += 1;
        }
    }
    black_box(out.iter().fold(0, |a, p| a ^ p.0))
}

fn bench(c: &mut Criterion) {
    let x86 = MachineSpec::preset("x86-64").unwrap();
    let mut g = c.benchmark_group("translate");
    let read = [AccessKind::Read];

    let mut m = machine(x86.clone(), 32);
    let hits = addresses(4096, 32, 1);
    // Warm the L1 DTLB and L1 ITLB with dirty entries, so every access below hits.
    sweep(&mut m, &hits, &[AccessKind::Write]);
    sweep(&mut m, &hits, &[AccessKind::Execute]);
    g.throughput(Throughput::Elements(hits.len() as u64));
    g.bench_function("tlb_hit/x86-64", |b| b.iter(|| sweep(&mut m, &hits, &read)));
    let vas: Vec<VirtAddr> = hits.iter().map(|&a| VirtAddr(a)).collect();
    let mut out = vec![PhysAddr(0); vas.len()];
    g.bench_function("tlb_hit_run/x86-64", |b| {
        b.iter(|| sweep_runs(&mut m, &vas, &mut out))
    });
    let mixed = [
        AccessKind::Read,
        AccessKind::Write,
        AccessKind::Read,
        AccessKind::Execute,
    ];
    g.bench_function("tlb_hit_mixed/x86-64", |b| {
        b.iter(|| sweep(&mut m, &hits, &mixed))
    });

    let pages = 64 * 1024;
    let walks = addresses(4096, pages, 7);
    let mut m = machine(x86.clone(), pages);
    g.bench_function("walk/x86-64", |b| b.iter(|| sweep(&mut m, &walks, &read)));
    let mut no_pwc = x86;
    no_pwc.walk_caches.clear();
    let mut m = machine(no_pwc, pages);
    g.bench_function("walk_no_pwc/x86-64", |b| {
        b.iter(|| sweep(&mut m, &walks, &read))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
