//! Helpers shared by the library's integration tests: machines, a booted kernel with a
//! process to run in, and the test data. Each test file says `mod support;` and uses
//! what it needs.

#![allow(dead_code)]

use std::path::PathBuf;
use vmsim::hw::MachineSpec;
use vmsim::os::{Kernel, KernelConfig, Pid, Program};

/// A preset machine, with `ram` bytes of RAM if given.
pub fn machine(preset: &str, ram: Option<u64>) -> MachineSpec {
    let spec = MachineSpec::preset(preset).unwrap_or_else(|e| panic!("{preset}: {e}"));
    match ram {
        Some(bytes) => spec.with_ram(bytes, "test").unwrap(),
        None => spec,
    }
}

/// Boots `spec` with `config` and spawns one small process, named `name`.
pub fn boot_with(spec: MachineSpec, config: KernelConfig, name: &str) -> (Kernel, Pid) {
    let mut k = Kernel::boot(spec, config);
    let pid = k.spawn(&Program::small(name, k.page_size())).unwrap();
    (k, pid)
}

/// An x86-64 machine with 64 MiB of RAM, booted with the default configuration, and a
/// process to run in.
pub fn boot() -> (Kernel, Pid) {
    boot_with(
        machine("x86-64", Some(64 << 20)),
        KernelConfig::default(),
        "user",
    )
}

/// A file of the test data in `tests/data/`.
pub fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}
