//! Copy-on-write: a write to a page shared since `fork` (or the zero page) gets its own
//! copy, or takes the page over when nobody else maps it.

use super::frames::FrameKind;
use super::vma::Vma;
use super::{Kernel, Pid};
use crate::addr::{Pfn, VirtAddr};
use crate::hw::{Flags, Slot};
use crate::os::FaultKind;
use crate::os::Violation;

impl Kernel {
    /// Breaks copy-on-write for a write to `page`, mapped read-only to `old`.
    pub(super) fn cow(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        old: Pfn,
        flags: Flags,
    ) -> Result<FaultKind, Violation> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid).map_err(|_| Violation::NoVma)?.pt;
        let writable = self.user_flags(vma.prot, true, false);
        // A page whose slot only the swap cache holds is freed from swap first, as
        // Linux's wp_can_reuse_anon_folio does: then it may be the writer's alone.
        if let Some(dev) = self.swap.dev.as_ref() {
            let owned = dev.cached_slot(old).filter(|&s| dev.owns(s));
            if let Some(slot) = owned.filter(|_| self.frames.refs(old) == 2) {
                self.drop_swap_cache(slot);
            }
        }
        if old != self.space.zero_pfn
            && self.frames.kind(old) == FrameKind::Anon
            && self.frames.refs(old) == 1
        {
            let keep = flags & (Flags::ACCESSED | Flags::DIRTY);
            let flush = pt
                .set_flags(&paging, &mut self.machine.ram, page, writable | keep)
                .map_err(|_| Violation::NoVma)?;
            self.flush_for(pid, flush);
            return Ok(FaultKind::CowReuse);
        }
        // Reclaim must not take the page being copied while memory is found for the copy
        // (under heavy pressure it would come straight back and go again).
        self.reclaim.pinned.push(old);
        let new = self.alloc_user_frame(pid, FrameKind::Anon);
        self.reclaim.pinned.pop();
        let new = new?;
        // The OOM killer may have taken the process, or the page moved, while memory
        // was found: then retry from the start.
        let still = self.mm(pid).ok().map(|m| m.pt).and_then(|pt| {
            match pt.slot(&paging, &self.machine.ram, page) {
                Some(Slot::Leaf(m)) => Some(m.pfn == old),
                _ => None,
            }
        });
        if still != Some(true) {
            self.put_frame(new);
            return if self.mm(pid).is_ok() {
                Ok(FaultKind::Spurious)
            } else {
                Err(Violation::OutOfMemory)
            };
        }
        let kind = if old == self.space.zero_pfn {
            self.zero_frame(new);
            FaultKind::ZeroPageCopy
        } else {
            self.copy_frame(old, new);
            FaultKind::CowCopy
        };
        // The OOM killer may have run while allocating; the page must still be ours.
        let pt = self.mm(pid).map_err(|_| Violation::OutOfMemory)?.pt;
        let (_, flush) = pt
            .unmap(&paging, &mut self.machine.ram, page)
            .map_err(|_| Violation::NoVma)?;
        self.flush_for(pid, flush);
        self.uncount(pid, old);
        self.rmap.remove(old, pid, page);
        if vma.locked.is_locked() {
            // A locked mapping of it goes; whoever still maps it may reclaim it.
            self.munlock_frame(old);
        }
        self.put_frame(old);
        self.install(pid, page, new, writable)
            .map_err(|_| Violation::OutOfMemory)?;
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn copy_on_write_survives_swapping() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::TwoList);
        let n = 300u64;
        // Pressure from a third process pushes the shared pages out.
        let (parent, child, _, a) = fork_under_pressure(&mut k, n, 500);
        assert!(k.log.counters.swap_outs > 0);
        write_pages(&mut k, child, a, n, |i| 1000 + i);
        for i in 0..n {
            assert_eq!(k.read_u64(parent, VirtAddr(a.0 + i * 4096)).unwrap(), i);
            assert_eq!(
                k.read_u64(child, VirtAddr(a.0 + i * 4096)).unwrap(),
                1000 + i
            );
        }
    }
}
