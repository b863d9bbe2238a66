//! Page traces for `vmsim policy`: any bytes either parse or are refused with an error
//! (text and oracleGeneral alike); never a panic. What parses must round-trip through
//! oracleGeneral and run under every policy with hits + misses = references.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::policy::trace::{parse_oracle, parse_text, write_oracle};
use vmsim::policy::{simulate, PolicyKind, RunSpec};

fuzz_target!(|data: &[u8]| {
    let parsed = [parse_text(data, "fuzz"), parse_oracle(data, "fuzz")];
    for t in parsed.into_iter().flatten() {
        assert_eq!(parse_oracle(&write_oracle(&t), "round trip").unwrap(), t);
        for k in PolicyKind::ALL {
            let spec = RunSpec {
                policy: k,
                frames: 1 + data.len() % 7,
                window: 1 + data.len() % 5,
                threshold: data.len() % 3,
                seed: 1,
            };
            let s = simulate(&spec, &t, None);
            assert_eq!(s.hits + s.misses, t.len() as u64);
        }
    }
});
