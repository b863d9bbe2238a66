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

pub(crate) fn faults(k: &Kernel, kind: FaultKind) -> u64 {
    k.log.counters.faults_of(kind)
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
