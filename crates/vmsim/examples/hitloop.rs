//! A fixed loop of TLB-hit translations, for instruction-level profiling
//! (`valgrind --tool=callgrind target/release/examples/hitloop`).
use vmsim::addr::{Pfn, VirtAddr};
use vmsim::hw::{AccessKind, Flags, Machine, MachineSpec, PageTable, Privilege, SimpleFrames};

fn main() {
    let mut m = Machine::new(MachineSpec::preset("x86-64").unwrap());
    let n = m.ram.nr_frames();
    let mut frames = SimpleFrames::new(n / 2, n);
    let p = m.spec.paging.clone();
    let pt = PageTable::new(&p, &mut m.ram, &mut frames, 1).unwrap();
    for i in 0..32u64 {
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
    let mut s = 1u64;
    let addrs: Vec<u64> = (0..4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            0x1000_0000 + (s % 32) * 4096 + (s >> 40) % 4096
        })
        .collect();
    let mut acc = 0u64;
    for _ in 0..100 {
        for &a in &addrs {
            acc ^= m
                .translate(VirtAddr(a), AccessKind::Read, Privilege::User)
                .map_or(0, |p| p.0);
        }
    }
    println!("{acc}");
}
