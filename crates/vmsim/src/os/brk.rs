//! `brk`: the heap grows or shrinks at its top.

use super::vma::{Backing, Prot, Vma, VmaRole};
use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;

impl Kernel {
    /// `brk`: moves the program break to `new` (or reports it, with `None`). Fails with
    /// ENOMEM where the heap would run into another mapping or past the commit limit.
    ///
    /// In an empty image ([`Kernel::exec_empty`]) whose heap has no place yet, `None`
    /// reports 0, and the first `new` becomes the heap's start and the break, mapping
    /// nothing: ENOMEM if it lies below `mmap_min_addr` or outside user space.
    pub fn brk(&mut self, pid: Pid, new: Option<VirtAddr>) -> Result<VirtAddr, Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let ps = k.page_size();
            let (start_brk, old, placed) = {
                let mm = k.mm(pid)?;
                (mm.start_brk, mm.brk, mm.heap_placed)
            };
            let Some(new) = new else { return Ok(old) };
            if !placed {
                if new < k.space.mmap_min || new >= k.space.task_size {
                    return Err(Errno::ENOMEM);
                }
                let mm = k.mm_mut(pid)?;
                mm.start_brk = new;
                mm.brk = new;
                mm.heap_placed = true;
                return Ok(new);
            }
            if new < start_brk {
                return Err(Errno::ENOMEM);
            }
            let old_end = old.align_up(ps).ok_or(Errno::ENOMEM)?;
            let new_end = new.align_up(ps).ok_or(Errno::ENOMEM)?;
            if new_end > old_end {
                if new_end > k.mm(pid)?.mmap_base || k.mm(pid)?.vmas.overlaps(old_end, new_end) {
                    return Err(Errno::ENOMEM);
                }
                let grow = new_end.0 - old_end.0;
                k.commit(grow)?;
                let mm = k.mm_mut(pid)?;
                mm.committed += grow;
                let locked = mm.lock_future;
                mm.vmas.insert(Vma {
                    start: old_end,
                    end: new_end,
                    prot: Prot::RW,
                    shared: false,
                    backing: Backing::Anon,
                    role: VmaRole::Heap,
                    accounted: true,
                    huge: Default::default(),
                    access: Default::default(),
                    locked,
                    fork: Default::default(),
                    swap_ra: Default::default(),
                });
                k.mm_mut(pid)?.brk = new;
                k.populate_new_locked(pid, old_end, grow, locked);
                return Ok(new);
            } else if new_end < old_end {
                k.munmap(pid, new_end, old_end.0 - new_end.0)?;
            }
            k.mm_mut(pid)?.brk = new;
            Ok(new)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn brk_grows_and_shrinks_the_heap() {
        let (mut k, pid) = booted();
        let b0 = k.brk(pid, None).unwrap();
        let b1 = k.brk(pid, Some(VirtAddr(b0.0 + 10_000))).unwrap();
        assert_eq!(b1.0, b0.0 + 10_000);
        k.write_u64(pid, VirtAddr(b0.0 + 9_000), 3).unwrap();
        k.brk(pid, Some(b0)).unwrap();
        assert!(k
            .access(pid, VirtAddr(b0.0 + 9_000), AccessKind::Read)
            .is_err());
        let pid = spawn(&mut k);
        assert_eq!(k.brk(pid, Some(VirtAddr(8))), Err(Errno::ENOMEM));
    }

    #[test]
    fn the_first_brk_of_an_empty_image_places_its_heap() {
        let mut k = boot("x86-64");
        let pid = k.spawn_empty("img").unwrap();
        assert_eq!(k.brk(pid, None), Ok(VirtAddr(0)));
        assert_eq!(
            k.brk(pid, Some(VirtAddr(8))),
            Err(Errno::ENOMEM),
            "below mmap_min"
        );
        let start = VirtAddr(0x5555_5555_9000);
        assert_eq!(k.brk(pid, Some(start)), Ok(start));
        assert!(k.mm(pid).unwrap().vmas.is_empty(), "placing maps nothing");
        let top = VirtAddr(start.0 + 0x21000);
        assert_eq!(k.brk(pid, Some(top)), Ok(top));
        k.write_u64(pid, VirtAddr(start.0 + 0x20000), 9).unwrap();
        assert_eq!(k.mm(pid).unwrap().start_brk, start);
        assert_eq!(
            k.brk(pid, Some(VirtAddr(start.0 - 4096))),
            Err(Errno::ENOMEM)
        );
        // A child inherits the placed heap.
        let child = k.fork(pid).unwrap();
        assert_eq!(k.brk(child, None), Ok(top));
    }
}
