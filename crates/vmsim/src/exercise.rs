//! Exercises generated from a seed, with their answer keys, in the manner of the OSTEP
//! homework simulators: translation on the textbook machine (a TLB and a page table to
//! read, addresses to translate), and page replacement (a reference string, a number of
//! frames, a policy).

use crate::addr::VirtAddr;
use crate::hw::state::load_state;
use crate::hw::story::Summary;
use crate::hw::{AccessKind, Privilege};
use crate::policy::{PageTrace, PolicyKind, RunSpec};
use serde::Serialize;
use std::fmt::Write;

use crate::rng::Rng;

/// A translation exercise: a machine state and addresses to translate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TranslationExercise {
    /// The seed it came from.
    pub seed: u64,
    /// The machine state, as a state file (`vmsim explain --state` reads it).
    pub state: String,
    /// The TLB entries: (set, tag, ppn).
    pub tlb: Vec<(u64, u64, u64)>,
    /// The page-table entries: (vpn, ppn, valid).
    pub ptes: Vec<(u64, u64, bool)>,
    /// The addresses to translate.
    pub questions: Vec<u64>,
    /// The answers, one per address.
    pub answers: Vec<Summary>,
}

/// A translation exercise on the textbook machine (14-bit VA, 12-bit PA, 64-byte
/// pages, a 16-entry 4-way TLB): 8 TLB entries, 16 page-table entries (some invalid),
/// and `n` addresses that mix TLB hits, walks and faults.
pub fn translation(seed: u64, n: usize) -> TranslationExercise {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut state = String::from("machine = \"textbook\"\n");
    // Page-table entries for 16 distinct VPNs, a quarter invalid.
    let mut vpns: Vec<u64> = Vec::new();
    while vpns.len() < 16 {
        let v = r.below(256);
        if !vpns.contains(&v) {
            vpns.push(v);
        }
    }
    let mut ptes = Vec::new();
    for &v in &vpns {
        let ppn = r.below(48);
        let valid = r.below(4) != 0;
        let _ = write!(
            state,
            "\n[[pte]]\nvpn = {v:#04x}\nppn = {ppn:#04x}\nvalid = {valid}\n"
        );
        ptes.push((v, ppn, valid));
    }
    // TLB entries for half of the valid mappings (as a TLB would hold them).
    let mut cached = Vec::new();
    let mut tlb = Vec::new();
    for &(v, ppn, valid) in &ptes {
        let (set, tag) = (v % 4, v / 4);
        if valid
            && cached.len() < 8
            && r.below(2) == 0
            && cached.iter().filter(|&&(s, _)| s == set).count() < 4
        {
            let _ = write!(
                state,
                "\n[[tlb]]\nset = {set}\ntag = {tag:#04x}\nppn = {ppn:#04x}\n"
            );
            cached.push((set, tag));
            tlb.push((set, tag, ppn));
        }
    }
    // Questions: addresses in mapped pages (cached or not) and in others.
    let questions: Vec<u64> = (0..n)
        .map(|_| {
            let vpn = if r.below(4) == 0 {
                r.below(256)
            } else {
                vpns[r.below(vpns.len() as u64) as usize]
            };
            (vpn << 6) | r.below(64)
        })
        .collect();
    let mut m = load_state(&state, "exercise").expect("a generated state is valid");
    let paging = m.spec.paging;
    let answers = questions
        .iter()
        .map(|&va| {
            m.explain(VirtAddr(va), AccessKind::Read, Privilege::User)
                .summary(&paging)
        })
        .collect();
    TranslationExercise {
        seed,
        state,
        tlb,
        ptes,
        questions,
        answers,
    }
}

/// A replacement exercise: a reference string and the frames to run it in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplacementExercise {
    /// The seed it came from.
    pub seed: u64,
    /// The policy.
    pub policy: String,
    /// Frames.
    pub frames: usize,
    /// The page numbers referenced, in order.
    pub references: Vec<u64>,
    /// For each reference, whether it hit.
    pub hits: Vec<bool>,
    /// Misses in all.
    pub misses: u64,
}

/// A replacement exercise: `n` references over a handful of pages for `policy` with 3
/// or 4 frames.
pub fn replacement(seed: u64, n: usize, policy: PolicyKind) -> ReplacementExercise {
    let mut r = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let pages = 4 + r.below(3);
    let frames = 3 + r.below(2) as usize;
    let references: Vec<u64> = (0..n).map(|_| r.below(pages)).collect();
    let t = PageTrace::from_pages(references.iter().copied());
    let spec = RunSpec {
        policy,
        frames,
        window: frames,
        threshold: frames,
        seed: 1,
    };
    let mut hits = vec![false; n];
    let stats = crate::policy::simulate_observed(&spec, &t, None, |i, hit| hits[i] = hit);
    let prev = stats.misses;
    ReplacementExercise {
        seed,
        policy: policy.to_string(),
        frames,
        references,
        hits,
        misses: prev,
    }
}

impl TranslationExercise {
    /// The exercise as a student reads it (made from `seed`), with the answers if
    /// `answers`.
    pub fn to_text(&self, seed: u64, answers: bool) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Translation exercise (seed {seed}) on the textbook machine: 14-bit virtual\naddresses, 12-bit physical addresses, 64-byte pages, a 16-entry 4-way TLB.\n\nTLB (set, tag, PPN; valid entries only)"
        );
        for (set, tag, ppn) in &self.tlb {
            let _ = writeln!(t, "  set {set}  tag {tag:#04x}  PPN {ppn:#04x}");
        }
        let _ = writeln!(
            t,
            "\nPage table (VPN -> PPN, valid); VPNs not listed are invalid"
        );
        let mut ptes = self.ptes.clone();
        ptes.sort();
        for (vpn, ppn, valid) in &ptes {
            let v = if *valid { "valid" } else { "invalid" };
            let _ = writeln!(t, "  VPN {vpn:#04x} -> PPN {ppn:#04x}  {v}");
        }
        let _ = writeln!(
            t,
            "\nFor each virtual address give the VPN, VPO, TLB index and tag, whether\nthe TLB hits, whether the access faults, and the PPN and physical address."
        );
        for (i, va) in self.questions.iter().enumerate() {
            let _ = writeln!(t, "  {}. VA {va:#06x}", i + 1);
        }
        if answers {
            let _ = writeln!(t, "\nAnswers");
            for (i, a) in self.answers.iter().enumerate() {
                let _ = writeln!(
                    t,
                    "  {}. VA {:#06x}: VPN {:#04x} VPO {:#04x} TLBI {} TLBT {:#04x} TLB {} {}",
                    i + 1,
                    a.va,
                    a.vpn,
                    a.vpo,
                    a.tlb_index.unwrap_or(0),
                    a.tlb_tag.unwrap_or(0),
                    if a.tlb_hit { "hit" } else { "miss" },
                    match (a.ppn, a.pa) {
                        (Some(ppn), Some(pa)) => format!("PPN {ppn:#04x} PA {pa:#05x}"),
                        _ => "page fault".into(),
                    }
                );
            }
        }
        t
    }
}

impl ReplacementExercise {
    /// The exercise as a student reads it (made from `seed`), with the answers if
    /// `answers`.
    pub fn to_text(&self, seed: u64, answers: bool) -> String {
        let refs: Vec<String> = self.references.iter().map(|r| r.to_string()).collect();
        let mut t = format!(
            "Replacement exercise (seed {seed}): {} frames, policy {}, memory empty at the start.\nReferences: {}\nWhich references hit, and how many misses are there?\n",
            self.frames,
            self.policy,
            refs.join(", ")
        );
        if answers {
            let marks: Vec<&str> = self
                .hits
                .iter()
                .map(|&h| if h { "hit" } else { "miss" })
                .collect();
            let _ = writeln!(
                t,
                "\nAnswers: {}\nMisses: {}",
                marks.join(", "),
                self.misses
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exercises_are_deterministic_and_varied() {
        assert_eq!(translation(7, 6), translation(7, 6));
        assert_ne!(translation(7, 6).questions, translation(8, 6).questions);
        let e = translation(3, 40);
        assert!(e.answers.iter().any(|a| a.tlb_hit));
        assert!(e.answers.iter().any(|a| !a.tlb_hit && !a.page_fault));
        assert!(e.answers.iter().any(|a| a.page_fault));
        let r = replacement(5, 12, PolicyKind::Fifo);
        assert_eq!(r, replacement(5, 12, PolicyKind::Fifo));
        assert_eq!(r.hits.iter().filter(|&&h| !h).count() as u64, r.misses);
    }
}
