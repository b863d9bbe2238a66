//! Repeated string instructions (`rep movs`, `rep stos`, ...): one record per page a
//! run of iterations touches, not one per iteration.
//!
//! QEMU 7.2 runs each iteration of a `rep`-prefixed string instruction as one
//! execution of a block holding only that instruction, so glibc's `memset` and `memcpy`
//! of large buffers (which use `rep stosb` and `rep movsb`) would make a fetch and a
//! store (and a load, for `movs`) per byte. A CPU runs such an instruction as one,
//! moving 16 to 64 bytes a cycle: a recording of every iteration made `memset` of 115
//! MB cost 230 million accesses and 48 ms of a replay's clock, where it took 8 ms
//! natively. So while a block of one such instruction runs again and again, the plugin
//! records its first fetch, then one load or store for each page the iterations move
//! on to (the first byte each touches there, at the element's size), and the bytes of
//! the iterations' fetches as further fetches at the instruction, each as long as the
//! rest of its page allows (which the replay's clock counts as the instructions' work;
//! a fetch that ran past the page would touch the next one).

/// Whether `code` (an instruction's bytes) is a string instruction with a `rep`,
/// `repe` or `repne` prefix: legacy prefixes, then at most one REX prefix, then
/// `movs`, `cmps`, `stos`, `lods`, `scas`, `ins` or `outs`.
pub fn is_rep_string(code: &[u8]) -> bool {
    let mut rep = false;
    let mut i = 0;
    while let Some(&b) = code.get(i) {
        match b {
            0xf2 | 0xf3 => rep = true,
            0xf0 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0x66 | 0x67 => {}
            _ => break,
        }
        i += 1;
    }
    if code.get(i).is_some_and(|b| b & 0xf0 == 0x40) {
        i += 1;
    }
    rep && code
        .get(i)
        .is_some_and(|b| matches!(b, 0xa4..=0xa7 | 0xaa..=0xaf | 0x6c..=0x6f))
}

/// One thread's run of iterations of one repeated string instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The vCPU running it.
    pub vcpu: u32,
    /// The instruction's address.
    pub va: u64,
    /// Bytes of the iterations' fetches not yet recorded.
    pub fetched: u64,
    /// The page of the last load recorded in the run (`u64::MAX`: none yet).
    pub load_page: u64,
    /// The page of the last store recorded in the run.
    pub store_page: u64,
}

impl Run {
    /// A run starting with its first iteration (whose fetch is recorded).
    pub fn new(vcpu: u32, va: u64) -> Run {
        Run {
            vcpu,
            va,
            fetched: 0,
            load_page: u64::MAX,
            store_page: u64::MAX,
        }
    }

    /// Whether an access at `va` (a store or not) goes on a page the run has not just
    /// recorded; notes the page.
    pub fn new_page(&mut self, va: u64, store: bool) -> bool {
        let last = if store {
            &mut self.store_page
        } else {
            &mut self.load_page
        };
        let page = va >> 12;
        let new = *last != page;
        *last = page;
        new
    }

    /// Adds an iteration's fetch of `len` bytes; returns the bytes to record as a fetch
    /// now, if the most one fetch may carry (`most`) would be passed.
    pub fn add_fetch(&mut self, len: u64, most: u64) -> Option<u64> {
        let out = (self.fetched + len > most).then(|| std::mem::take(&mut self.fetched));
        self.fetched += len;
        out.filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rep_string_instructions_are_told_from_others() {
        // rep stosb; rep movsq (REX.W); repne scasb; rep stosd with an operand-size
        // prefix before the rep.
        for code in [
            &[0xf3, 0xaa][..],
            &[0xf3, 0x48, 0xa5],
            &[0xf2, 0xae],
            &[0x66, 0xf3, 0xab],
        ] {
            assert!(is_rep_string(code), "{code:x?}");
        }
        // stosb without rep; rep ret (f3 c3); pause (f3 90); a REX prefix before
        // the rep is not a prefix of this string instruction; empty.
        for code in [
            &[0xaa][..],
            &[0xf3, 0xc3],
            &[0xf3, 0x90],
            &[0x48, 0xf3, 0xab],
            &[],
        ] {
            assert!(!is_rep_string(code), "{code:x?}");
        }
    }

    #[test]
    fn a_run_records_each_page_once_per_kind_and_fetches_a_page_at_a_time() {
        let mut r = Run::new(0, 0x40_1000);
        assert!(r.new_page(0x7000, false));
        assert!(r.new_page(0x9000, true));
        assert!(!r.new_page(0x7ff8, false));
        assert!(!r.new_page(0x9ff8, true));
        assert!(r.new_page(0x8000, false), "the next page");
        // Two-byte iterations: a fetch of 4,096 bytes after 2,048 of them.
        let out: Vec<u64> = (0..4100).filter_map(|_| r.add_fetch(2, 4096)).collect();
        assert_eq!(out, [4096, 4096]);
        assert_eq!(r.fetched, 4100 * 2 - 8192);
    }
}
