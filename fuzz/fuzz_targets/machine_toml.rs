//! Machine descriptions: any text either validates or is refused with an error; never a
//! panic. A description that validates (and is small enough) must build a machine on
//! which the demo address space maps and runs without faults, and must boot the kernel
//! (or be refused as too small) and run the server workload without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::demo::Demo;
use vmsim::hw::MachineSpec;
use vmsim::os::{Kernel, KernelConfig};
use vmsim::workload::run_server;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(spec) = MachineSpec::from_toml(text, "fuzz") else { return };
    if spec.nr_frames() > 1 << 16 {
        return;
    }
    if let Ok(mut demo) = Demo::new(spec.clone()) {
        assert_eq!(demo.run(256, 1), 0, "the demo faulted on a valid machine");
    }
    let config = KernelConfig {
        swap_bytes: spec.ram_bytes / 2,
        ..KernelConfig::default()
    };
    if let Ok(mut k) = Kernel::try_boot(spec, config) {
        run_server(&mut k, 500, 1);
    }
});
