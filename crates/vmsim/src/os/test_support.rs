//! What the kernel's unit tests share: booting a machine, starting a process, reading
//! a counter. Each test sits beside the code it tests.

pub(crate) use super::*;
pub(crate) use crate::hw::{AccessKind, MachineSpec};

pub(crate) fn boot(preset: &str) -> Kernel {
    Kernel::boot(
        MachineSpec::preset(preset).unwrap(),
        KernelConfig::default(),
    )
}

pub(crate) fn boot_with(preset: &str, f: impl FnOnce(&mut KernelConfig)) -> Kernel {
    let mut c = KernelConfig::default();
    f(&mut c);
    Kernel::boot(MachineSpec::preset(preset).unwrap(), c)
}

pub(crate) fn spawn(k: &mut Kernel) -> Pid {
    let p = Program::small("test", k.page_size());
    k.spawn(&p).unwrap()
}

/// An x86-64 machine with one process running.
pub(crate) fn booted() -> (Kernel, Pid) {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    (k, pid)
}

/// An x86-64 machine of `n` CPUs with one process running.
pub(crate) fn booted_cpus(n: u32) -> (Kernel, Pid) {
    let spec = MachineSpec::preset("x86-64")
        .unwrap()
        .with_cpus(n, "test")
        .unwrap();
    let mut k = Kernel::boot(spec, KernelConfig::default());
    let pid = spawn(&mut k);
    (k, pid)
}

pub(crate) fn faults(k: &Kernel, kind: FaultKind) -> u64 {
    k.log.counters.faults_of(kind)
}

/// The leaf mapping `va` in `pid`'s tables (panics if it is not mapped).
pub(crate) fn leaf(k: &Kernel, pid: Pid, va: crate::addr::VirtAddr) -> crate::hw::Mapping {
    let pt = k.mm(pid).unwrap().pt;
    pt.lookup(&k.machine.spec.paging, &k.machine.ram, va)
        .expect("mapped")
}

pub(crate) fn boot_small(ram: u64, swap: u64, policy: ReclaimPolicy) -> Kernel {
    let spec = MachineSpec::preset("x86-64")
        .unwrap()
        .with_ram(ram, "test")
        .unwrap();
    Kernel::boot(
        spec,
        KernelConfig {
            swap_bytes: swap,
            reclaim: policy,
            ..KernelConfig::default()
        },
    )
}

/// Writes `value(i)` into the first word of each of `n` pages from `a` in `pid`.
pub(crate) fn write_pages(
    k: &mut Kernel,
    pid: Pid,
    a: VirtAddr,
    n: u64,
    value: impl Fn(u64) -> u64,
) {
    for i in 0..n {
        k.write_u64(pid, VirtAddr(a.0 + i * 4096), value(i))
            .unwrap();
    }
}

/// A parent with `n` pages written (page `i` holds `i`), forked, then a third process
/// touching `hog` pages of its own to push the shared ones out. Returns (parent, child,
/// the third process, the parent's area).
pub(crate) fn fork_under_pressure(k: &mut Kernel, n: u64, hog: u64) -> (Pid, Pid, Pid, VirtAddr) {
    let parent = spawn(k);
    let a = k.mmap(parent, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
    write_pages(k, parent, a, n, |i| i);
    let child = k.fork(parent).unwrap();
    let h_pid = spawn(k);
    let h = k.mmap(h_pid, MmapArgs::anon(hog * 4096, Prot::RW)).unwrap();
    write_pages(k, h_pid, h, hog, |_| 1);
    (parent, child, h_pid, a)
}
