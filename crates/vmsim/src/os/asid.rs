//! The ASID allocator: address-space ids handed out in generations. When the ids run
//! out, a new generation starts (every TLB is flushed by the caller) and every id of
//! the old one is stale (ARM64's roll-over scheme).

/// The next free id and the current generation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Asids {
    /// The next id to hand out (0 is the kernel's).
    pub(super) next: u32,
    /// The current generation.
    pub(super) gen: u64,
}

impl Default for Asids {
    fn default() -> Self {
        Asids { next: 1, gen: 0 }
    }
}

impl Asids {
    /// A fresh id no larger than `max`, and whether the ids rolled over to a new
    /// generation to find it (the caller must then flush every TLB).
    pub(super) fn take(&mut self, max: u32) -> (u32, bool) {
        let rolled = self.next > max;
        if rolled {
            self.gen += 1;
            self.next = 1;
        }
        let a = self.next;
        self.next += 1;
        (a, rolled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::*;

    #[test]
    fn ids_roll_over_into_a_new_generation() {
        let mut a = Asids::default();
        assert_eq!(a.take(3), (1, false));
        assert_eq!(a.take(3), (2, false));
        assert_eq!(a.take(3), (3, false));
        assert_eq!(a.gen, 0);
        assert_eq!(a.take(3), (1, true));
        assert_eq!(a.gen, 1);
        assert_eq!(a.take(3), (2, false));
    }

    #[test]
    fn asids_roll_over_and_flush_when_they_run_out() {
        let mut spec = MachineSpec::preset("x86-64").unwrap();
        spec.asid_bits = 2; // ids 1, 2, 3
        let mut k = Kernel::boot(spec, KernelConfig::default());
        let pids: Vec<Pid> = (0..5).map(|_| spawn(&mut k)).collect();
        let mut bufs = Vec::new();
        for (i, &p) in pids.iter().enumerate() {
            let a = k.mmap(p, MmapArgs::anon(4096, Prot::RW)).unwrap();
            k.write_u64(p, a, i as u64).unwrap();
            bufs.push(a);
        }
        for round in 0..3 {
            for (i, &p) in pids.iter().enumerate() {
                assert_eq!(k.read_u64(p, bufs[i]).unwrap(), i as u64, "round {round}");
            }
        }
        assert!(k.log.counters.asid_rollovers >= 3);
        let flushes = k.machine.mmu.counters.flushes;
        assert!(flushes >= k.log.counters.asid_rollovers);
    }
}
