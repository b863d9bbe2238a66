//! TLB shootdowns: a change that narrows access in an address space reaches the TLB
//! and walk caches of every CPU that may hold the old translation, as Linux's x86
//! `flush_tlb_mm_range` does.
//!
//! - The CPU making the change (the running one) flushes its own TLB when the address
//!   space is loaded there: page by page up to `tlb_single_page_flush_ceiling` (33
//!   pages), else the whole address space (`nr_tlb_local_flush_one` counts the pages,
//!   `nr_tlb_local_flush_all` the whole flushes).
//! - Every other CPU that has the address space loaded and is running one of its
//!   threads gets an interrupt and flushes the same way: one `nr_tlb_remote_flush` for
//!   the sender, one `nr_tlb_remote_flush_received` for each receiver. A CPU idling in
//!   lazy-TLB mode is skipped unless page tables were freed (then it loads the
//!   kernel's tables, as `leave_mm`); a CPU that once ran the address space and keeps
//!   its entries under their ASID (PCID) is flushed without an interrupt, which is
//!   what Linux's deferred flush at the next switch amounts to, since it cannot use
//!   them before.
//! - On RISC-V the interrupt is Linux's SBI remote fence (`sbi_remote_sfence_vma_asid`
//!   to the address space's CPU mask), which skips no lazy CPU: there every CPU with
//!   the address space loaded gets it, counted under the same names.
//! - Reclaim batches its flushes (Linux's `try_to_unmap_flush`): each CPU it must
//!   reach gets one interrupt at the end of the pass, however many pages it unmapped,
//!   and the running CPU flushes the running address space whole then
//!   (`arch_tlbbatch_flush`'s `TLB_FLUSH_ALL`), whatever the number of CPUs. Linux
//!   batches so when the address space may be live on another CPU, which for a
//!   program on a machine of several CPUs is nearly always (the thread moves between
//!   CPUs as it sleeps on I/O, and a CPU leaves the mask only when trimmed): a
//!   program thrashing under a 12 MiB limit on this project's 2-CPU machines took
//!   43k-56k shootdown interrupts, about one per reclaim pass. Hot pages whose
//!   entries a TLB keeps (code, mostly) get their accessed bits set again after
//!   each pass, which is what keeps them on the active list.
//!
//! Unmapping (munmap, mremap, madvise, mprotect, fork's write-protection) already
//! gathers a range operation's flushes into one, as `mmu_gather` does. Each
//! shootdown costs its sender [`MachineSpec::ipi_send_latency`] cycles and each
//! receiver [`MachineSpec::ipi_receive_latency`].
//!
//! [`MachineSpec::ipi_send_latency`]: crate::hw::MachineSpec::ipi_send_latency
//! [`MachineSpec::ipi_receive_latency`]: crate::hw::MachineSpec::ipi_receive_latency

use super::{Kernel, Pid};
use crate::hw::paging::Format;
use crate::hw::{Flushed, Mmu, TlbFlush};
use serde::Serialize;

/// TLB flushes, by Linux's names (`/proc/vmstat`'s `nr_tlb_*`, which Linux counts
/// only with `CONFIG_DEBUG_TLBFLUSH`; /proc/interrupts' `TLB` row counts the received
/// ones in every kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlbFlushCounters {
    /// Shootdowns sent (one per flush that reached another CPU, however many).
    pub remote_flush: u64,
    /// Shootdown interrupts received, on all CPUs.
    pub remote_flush_received: u64,
    /// Whole-address-space flushes of the TLB of the CPU making the change.
    pub local_flush_all: u64,
    /// Pages invalidated one by one in the TLB of the CPU making the change.
    pub local_flush_one: u64,
    /// Cycles shootdowns cost, senders' and receivers'.
    pub cycles: u64,
}

impl Kernel {
    /// Applies a pending flush of `pid`'s address space on every CPU that may cache
    /// it: see the [module](self) for who gets an interrupt.
    pub(super) fn flush_for(&mut self, pid: Pid, flush: TlbFlush) {
        self.shoot_remote(pid, false, |m| {
            flush.invalidate(m);
        });
        let loaded = self.tasks.current == Some(pid);
        if let (true, Some(owed)) = (loaded, &mut self.owed) {
            flush.add_to(owed);
            return;
        }
        if loaded || self.cached_under_asid(pid) {
            let what = flush.apply(&mut self.machine.mmu);
            if loaded {
                self.count_local(what);
            }
        } else {
            flush.discard_unloaded();
        }
    }

    /// Page tables of `pid` were freed: every CPU that may hold walk-cache entries
    /// pointing at them flushes the address space, lazy ones included; the running
    /// CPU does when `here` (the caller's rule: munmap flushes any tagged id, exit
    /// only a live one, as they always have).
    pub(super) fn flush_freed_tables(&mut self, pid: Pid, asid: u32, here: bool) {
        self.shoot_remote(pid, true, |m| m.flush_asid(asid));
        let loaded = self.tasks.current == Some(pid);
        if here {
            self.machine.mmu.flush_asid(asid);
            if loaded {
                self.count_local(Flushed::All);
            }
        }
    }

    /// Whether `pid`'s translations may sit in a TLB where its address space is not
    /// loaded: tagged with an ASID of the current generation.
    fn cached_under_asid(&self, pid: Pid) -> bool {
        self.machine.spec.asid_tagged
            && self
                .mm(pid)
                .is_ok_and(|m| m.asid_gen == self.tasks.asids.gen)
    }

    fn count_local(&mut self, what: Flushed) {
        match what {
            Flushed::Pages(n) => self.log.counters.tlb.local_flush_one += n,
            Flushed::All => self.log.counters.tlb.local_flush_all += 1,
        }
    }

    /// The remote half of a flush of `pid`'s address space: `invalidate` runs on
    /// the MMU of every CPU but the running one that may cache it, and those that run
    /// `pid` (or idle with it loaded, when `freed_tables`) count an interrupt.
    fn shoot_remote(&mut self, pid: Pid, freed_tables: bool, mut invalidate: impl FnMut(&mut Mmu)) {
        let n = self.nr_cpus();
        if n == 1 {
            return;
        }
        let me = self.machine.cpu();
        let cached = self.cached_under_asid(pid);
        // x86 skips lazy CPUs (`should_flush_tlb`); RISC-V's SBI fence goes to the mask.
        let riscv = self.machine.spec.paging.format == Format::Riscv;
        let to_lazy = freed_tables || riscv;
        let mut hit = 0u64;
        for c in (0..n).filter(|&c| c != me) {
            let cpu = &self.sched.cpus[c];
            let loaded = cpu.parked_mm == Some(pid);
            let running = cpu.thread.is_some();
            if loaded && (running || to_lazy) {
                invalidate(self.machine.mmu_of_mut(c));
                hit |= 1 << c;
                if !running && freed_tables && !riscv {
                    // A lazy x86 CPU told that tables went loads the kernel's (leave_mm).
                    self.unload(c);
                }
            } else if loaded || cached {
                invalidate(self.machine.mmu_of_mut(c));
            }
        }
        if hit == 0 {
            return;
        }
        match &mut self.gathering {
            Some(owed) => *owed |= hit,
            None => self.send_shootdown(hit),
        }
    }

    /// Counts one shootdown from the running CPU to the CPUs of `mask`.
    fn send_shootdown(&mut self, mask: u64) {
        let spec = &self.machine.spec;
        let (send, receive) = (
            spec.ipi_send_latency as u64,
            spec.ipi_receive_latency as u64,
        );
        let me = self.machine.cpu();
        let received = mask.count_ones() as u64;
        let t = &mut self.log.counters.tlb;
        t.remote_flush += 1;
        t.remote_flush_received += received;
        t.cycles += send + received * receive;
        self.sched.cpus[me].stats.shootdowns_sent += 1;
        for (c, cpu) in self.sched.cpus.iter_mut().enumerate() {
            if mask & (1 << c) != 0 {
                cpu.stats.shootdowns_received += 1;
            }
        }
    }

    /// Runs `f` (a system call, a reclaim pass) with its remote flushes gathered: each
    /// CPU it must reach gets one interrupt, when it returns. A call inside another
    /// leaves it to the outer one.
    pub(super) fn gathered<T>(&mut self, f: impl FnOnce(&mut Kernel) -> T) -> T {
        if self.gathering.is_some() {
            return f(self);
        }
        self.gathering = Some(0);
        let r = f(self);
        if let Some(cpus) = self.gathering.take().filter(|&m| m != 0) {
            self.send_shootdown(cpus);
        }
        r
    }

    /// Runs `f`, a reclaim pass, [`gathered`](Self::gathered), and with the running
    /// CPU's flushes of the running address space held to its end: then one whole
    /// flush if it unmapped any of it, as Linux's `arch_tlbbatch_flush` does
    /// (`TLB_FLUSH_ALL`), not page by page. A pass inside another leaves it to the
    /// outer one.
    pub(super) fn gathered_unmaps<T>(&mut self, f: impl FnOnce(&mut Kernel) -> T) -> T {
        if self.owed.is_some() {
            return self.gathered(f);
        }
        self.owed = Some(None);
        let r = self.gathered(f);
        if let Some(Some(flush)) = self.owed.take() {
            let what = flush.apply_whole(&mut self.machine.mmu);
            self.count_local(what);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    /// A kernel on `preset` with `cpus` CPUs (and `ram`/`swap` if given), and a process
    /// whose threads 0 and 1 have run, on CPUs 0 and 1; thread 0 runs now.
    fn two_threads(preset: &str, cpus: u32, ram: Option<u64>, swap: u64) -> (Kernel, Pid) {
        let mut spec = MachineSpec::preset(preset)
            .unwrap()
            .with_cpus(cpus, "test")
            .unwrap();
        if let Some(r) = ram {
            spec = spec.with_ram(r, "test").unwrap();
        }
        let config = KernelConfig {
            swap_bytes: swap,
            reclaim: ReclaimPolicy::TwoList,
            ..KernelConfig::default()
        };
        let mut k = Kernel::boot(spec, config);
        let pid = spawn(&mut k);
        for tid in [0, 1, 0] {
            k.run_thread(pid, tid).unwrap();
        }
        assert_eq!(k.cpu_of_thread(pid, 1), Some(1.min(cpus as usize - 1)));
        (k, pid)
    }

    fn unmap_one_page(k: &mut Kernel, pid: Pid) {
        // Two pages, so that unmapping the first frees no page table.
        let a = k.mmap(pid, MmapArgs::anon(2 * 4096, Prot::RW)).unwrap();
        write_pages(k, pid, a, 2, |i| i);
        k.munmap(pid, a, 4096).unwrap();
    }

    #[test]
    fn a_cpu_running_the_address_space_hears_of_an_unmap_and_one_that_never_ran_it_does_not() {
        let (mut k, pid) = two_threads("x86-64", 3, None, 0);
        unmap_one_page(&mut k, pid);
        let t = k.counters().tlb;
        assert_eq!((t.remote_flush, t.remote_flush_received), (1, 1));
        assert_eq!(t.local_flush_one, 1);
        let s = k.cpu_stats();
        assert_eq!(
            (
                s[0].shootdowns_sent,
                s[1].shootdowns_received,
                s[2].shootdowns_received
            ),
            (1, 1, 0)
        );
        // One CPU: the same unmap is a local flush only.
        let (mut k, pid) = two_threads("x86-64", 1, None, 0);
        unmap_one_page(&mut k, pid);
        assert_eq!(k.counters().tlb.remote_flush, 0);
        assert_eq!(k.counters().tlb.local_flush_one, 1);
    }

    #[test]
    fn a_lazy_cpu_hears_only_of_freed_tables_on_x86_and_of_every_fence_on_riscv() {
        for (preset, lazy_hears) in [("x86-64", false), ("sv39", true)] {
            let (mut k, pid) = two_threads(preset, 2, None, 0);
            k.thread_exit(pid, 1);
            unmap_one_page(&mut k, pid);
            assert_eq!(k.counters().tlb.remote_flush, lazy_hears as u64, "{preset}");
            // Unmapping a whole lone mapping frees its page table: every preset tells
            // the lazy CPU, and x86 makes it load the kernel's tables.
            let far = MmapArgs {
                addr: Some(VirtAddr(0x10_0000_0000)),
                fixed: true,
                ..MmapArgs::anon(4096, Prot::RW)
            };
            let a = k.mmap(pid, far).unwrap();
            k.write_u64(pid, a, 1).unwrap();
            let before = k.counters().tlb.remote_flush;
            k.munmap(pid, a, 4096).unwrap();
            assert!(k.counters().tables_freed > 0, "{preset}");
            assert_eq!(k.counters().tlb.remote_flush, before + 1, "{preset}");
            let left = k.loaded_on(1).is_none();
            assert_eq!(left, preset == "x86-64", "{preset}: leave_mm");
        }
    }

    #[test]
    fn a_reclaim_pass_sends_one_shootdown_for_all_the_pages_it_unmaps() {
        // 8 MiB of RAM, 16 MiB written by a process whose other thread runs on CPU 1.
        let (mut k, pid) = two_threads("x86-64", 2, Some(8 << 20), 64 << 20);
        let n = 4096;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i);
        let c = k.counters();
        let unmapped = c.swap_outs;
        assert!(unmapped > 1000, "{unmapped} pages swapped");
        // Far fewer shootdowns than pages: one per pass.
        assert!(c.tlb.remote_flush > 0, "{:?}", c.tlb);
        assert!(
            c.tlb.remote_flush * 8 < unmapped,
            "{:?} for {unmapped}",
            c.tlb
        );
        // The running CPU flushes its whole TLB once a pass, not page by page.
        assert!(c.tlb.local_flush_all > 0, "{:?}", c.tlb);
        assert!(
            c.tlb.local_flush_all * 8 < unmapped && c.tlb.local_flush_one < 8,
            "{:?} for {unmapped}",
            c.tlb
        );
        for i in (0..n).step_by(97) {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
    }
}
