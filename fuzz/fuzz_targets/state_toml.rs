//! Machine state files: any text either loads or is refused with an error naming the
//! field; never a panic. What loads must translate any address without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::addr::VirtAddr;
use vmsim::hw::state::load_state;
use vmsim::hw::{AccessKind, Privilege};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Presets with huge RAM would make every run slow; exercises use small machines.
    if text.contains("x86") || text.contains("sv") {
        return;
    }
    if let Ok(mut m) = load_state(text, "fuzz") {
        for va in [0u64, 0x3d4, 0x1fff, 0x3fff, u64::MAX] {
            let _ = m.explain(VirtAddr(va), AccessKind::Read, Privilege::User);
        }
    }
});
