//! Helpers shared by the unit tests of user space (the allocators', the collectors' and
//! the workloads'): a booted machine with a process to run in.

use crate::hw::MachineSpec;
use crate::os::{Kernel, KernelConfig, Pid, Program};

/// An x86-64 machine with `ram` bytes of RAM, booted with the default configuration,
/// and a small process called `name` to run in.
pub(crate) fn boot_with_ram(name: &str, ram: u64) -> (Kernel, Pid) {
    let spec = MachineSpec::preset("x86-64")
        .unwrap()
        .with_ram(ram, "test")
        .unwrap();
    let mut k = Kernel::boot(spec, KernelConfig::default());
    let pid = k.spawn(&Program::small(name, k.page_size())).unwrap();
    (k, pid)
}

/// [`boot_with_ram`] with 64 MiB of RAM.
pub(crate) fn boot(name: &str) -> (Kernel, Pid) {
    boot_with_ram(name, 64 << 20)
}
