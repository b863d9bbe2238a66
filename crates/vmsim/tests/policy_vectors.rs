//! Miss counts of `vmsim policy`'s engine on the zipfscan_200k stream equal libCacheSim's
//! (tests/data/replacement/README.md has the provenance), read from both the text and
//! the oracleGeneral encodings.

mod support;

use vmsim::policy::mrc::{SampledCurve, StackDistances};
use vmsim::policy::{simulate, PageTrace, PolicyKind, RunSpec};

#[test]
fn miss_counts_match_libcachesim() {
    let text = PageTrace::read(&support::data("replacement/zipfscan_200k.txt.xz"), None).unwrap();
    let bin = PageTrace::read(
        &support::data("replacement/zipfscan_200k.oracleGeneral.bin.xz"),
        None,
    )
    .unwrap();
    assert_eq!(text, bin, "both encodings hold the same stream");
    assert_eq!(text.len(), 200_000);
    assert_eq!(text.nr_pages(), 26_114);
    let next = text.next_use();
    // frames: LRU, FIFO, FIFO-reinsertion, ARC, OPT
    let expected: [(usize, [u64; 5]); 3] = [
        (500, [114_464, 121_679, 112_644, 98_401, 83_609]),
        (2_900, [84_143, 89_070, 82_083, 72_105, 53_698]),
        (8_000, [58_945, 64_215, 57_627, 55_132, 36_345]),
    ];
    let policies = [
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::FifoReinsertion,
        PolicyKind::Arc,
        PolicyKind::Opt,
    ];
    for (frames, want) in expected {
        for (k, w) in policies.iter().zip(want) {
            let spec = RunSpec {
                policy: *k,
                frames,
                window: 0,
                threshold: 0,
                seed: 1,
            };
            let got = simulate(&spec, &text, Some(&next)).misses;
            assert_eq!(got, w, "{k} with {frames} frames");
        }
    }
}

#[test]
fn the_one_pass_lru_curve_matches_libcachesim_too() {
    let t = PageTrace::read(&support::data("replacement/zipfscan_200k.txt.xz"), None).unwrap();
    let d = StackDistances::of(&t);
    let curve = d.curve();
    assert_eq!(curve[500], 114_464);
    assert_eq!(curve[2_900], 84_143);
    assert_eq!(curve[8_000], 58_945);
    // A 10% SHARDS sample stays within 2% of the references at these sizes.
    let s = SampledCurve::of(&t, 0.1);
    for f in [500, 2_900, 8_000] {
        let err = (s.misses(f) as f64 - curve[f] as f64).abs() / t.len() as f64;
        assert!(err < 0.02, "{f} frames: error {err}");
    }
}
