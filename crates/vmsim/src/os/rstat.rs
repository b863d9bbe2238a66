//! A memory group's statistics as Linux's reclaim heuristics read them: as of the
//! last periodic flush, not as they are now.
//!
//! Linux keeps a memory cgroup's counters per CPU and adds them up (`cgroup_rstat`)
//! only when flushed: a worker flushes every group every 2 s (`FLUSH_TIME`), and the
//! flushes that reclaim asks for (`mem_cgroup_flush_stats_ratelimited`) happen only
//! when that worker is a whole period late. `lruvec_page_state` reads the last
//! flush's sums. So four of two-list reclaim's decisions use figures up to 2 s old:
//!
//! - the size of the working set a refault distance is compared with
//!   (`workingset_test_recent`: the group's active and inactive lists);
//! - whether an inactive list is short of its active one (`inactive_is_low`);
//! - whether the group has inactive file pages enough for cache trim mode
//!   (`prepare_scan_control`);
//! - whether refaults have activated pages since the last reclaim (the
//!   `workingset_activate_*` counters, and the snapshot taken when a reclaim ends).
//!
//! A group made for a run starts with every flushed figure at zero. Until the first
//! flush it therefore sees no working set (no refault is activated), no short
//! inactive list and no cache to trim, so its reclaim scans anonymous memory by
//! swappiness even beside plenty of clean page cache. Most programs a validation
//! measures end before that flush.
//!
//! vmsim flushes on the run's clock ([`Kernel::io_now`]), every
//! [`KernelConfig::stats_flush_ns`](super::KernelConfig::stats_flush_ns), the first
//! half a period in (Linux's worker keeps the machine's phase, not the program's: on
//! average the first flush comes half a period after a group is made), or at
//! [`KernelConfig::stats_flush_phase_ns`](super::KernelConfig::stats_flush_phase_ns)
//! (`--stats-flush-phase-ms`): on Linux the phase differs from run to run, and a
//! program whose outcome hangs on it can be run at several. The root
//! group's figures are read as they are: on Linux they have been flushed all along,
//! and a run without a limit keeps its results exactly as before. A period of 0
//! (`--stats-flush-ms 0`) reads every group's figures as they are.
//!
//! The run's clock can be shorter than the program's real run (a trace has no compute
//! time, and this model's kernel is cheaper than a virtual machine's). So the default
//! period is Linux's 2 s divided by [`CLOCK_SPEEDUP_PERCENT`], the ratio measured on
//! the validation corpus on the machines vmsim is validated on, and a program sees
//! about as many flushes as on Linux there. A program that computes far more than it
//! faults, or runs threads side by side, depends on how the clock counts its work
//! (`clock.rs`: 60% of the translation cycles, shared among the CPUs busy): counting
//! every cycle on one CPU, `bzip2`, `xz` and sqlite3 took 1.2 to 2.2 times their
//! native time and GNU `sort` 1.45 (docs/kernel.md), and saw their first flush
//! earlier in their work than on Linux.

use super::Kernel;

/// Linux's `FLUSH_TIME`: 2 s between periodic flushes, in nanoseconds.
pub const LINUX_FLUSH_NS: u64 = 2_000_000_000;

/// How much faster the run's clock goes than the program's real run, in percent, on
/// the machines vmsim is validated on: native seconds over simulated ones, median
/// over the 16 limited programs of docs/validation.md's corpus, 1.02 (0.63 to 1.58)
/// since the kernel's time per major fault and per swapped page is counted
/// (`KernelConfig::major_fault_cycles`), so the period is Linux's own. Before, on
/// the machines of December 2026, it was 1.22 (a period of 1,600 ms), and on
/// earlier, slower ones 4.2 (500 ms).
pub const CLOCK_SPEEDUP_PERCENT: u64 = 100;

/// The period vmsim flushes by: Linux's 2 s of real time, on the run's clock.
pub const STATS_FLUSH_NS: u64 = LINUX_FLUSH_NS * 100 / CLOCK_SPEEDUP_PERCENT;

/// One group's figures at the last flush.
#[derive(Clone, Copy, Debug, Default)]
struct Flushed {
    /// The lengths of its four lists (inactive and active anonymous, inactive and
    /// active file), indexed as the lists are.
    lists: [usize; 4],
    /// `workingset_activate_anon` and `workingset_activate_file`.
    activate: [u64; 2],
}

/// The flushed statistics of every group, and when the next flush is due.
#[derive(Debug, Default)]
pub(super) struct Rstat {
    /// When the next flush is due, on [`Kernel::io_now`]'s clock; `None` before the
    /// first look (then at the configured phase, half a period in by default).
    next: Option<u64>,
    /// Per group number, its figures at the last flush (zero before one).
    groups: Vec<Flushed>,
}

impl Kernel {
    /// Flushes every group's statistics if a flush has come due on the run's clock
    /// (Linux's periodic `flush_memcg_stats_dwork`, seen where reclaim reads them).
    pub(super) fn flush_stats_if_due(&mut self) {
        let period = self.config.stats_flush_ns;
        if period == 0 {
            return;
        }
        let next = *self
            .rstat
            .next
            .get_or_insert(self.config.stats_flush_phase_ns.unwrap_or(period / 2));
        let now = self.io_now();
        if now < next {
            return;
        }
        self.rstat.next = Some(next + (now - next) / period * period + period);
        let n = self.groups.list.len();
        self.rstat.groups.resize(n, Flushed::default());
        for g in 1..n {
            let lists = std::array::from_fn(|l| self.reclaim.lists.len_in(g as u16, l as u32));
            let st = &self.groups.list[g].stat;
            let activate = [st.workingset_activate_anon, st.workingset_activate_file];
            self.rstat.groups[g] = Flushed { lists, activate };
        }
    }

    /// Whether group `g`'s figures are read from the last flush (a group other than the
    /// root, with flushing on).
    fn flushed(&self, g: u16) -> bool {
        g != 0 && self.config.stats_flush_ns != 0
    }

    /// The length of list `l` of group `g` as reclaim's heuristics see it.
    pub(super) fn seen_len(&self, g: u16, l: u32) -> usize {
        if !self.flushed(g) {
            return self.reclaim.lists.len_in(g, l);
        }
        self.rstat
            .groups
            .get(g as usize)
            .map_or(0, |f| f.lists[l as usize])
    }

    /// Group `g`'s `workingset_activate_{anon,file}` as reclaim's heuristics see them.
    pub(super) fn seen_activations(&mut self, g: u16) -> [u64; 2] {
        if g == 0 {
            return self.log.counters.workingset_activate;
        }
        if self.flushed(g) {
            return self
                .rstat
                .groups
                .get(g as usize)
                .map_or([0, 0], |f| f.activate);
        }
        let st = self.group_stat(g);
        [st.workingset_activate_anon, st.workingset_activate_file]
    }
}

#[cfg(test)]
mod tests {
    use super::STATS_FLUSH_NS;
    use crate::os::test_support::*;

    #[test]
    fn a_group_sees_its_lists_as_of_the_last_flush() {
        let mut k = boot_with("x86-64", |c| c.memory_max = Some(32 << 20));
        let pid = spawn(&mut k);
        let g = k.process(pid).unwrap().group.0;
        assert_ne!(g, 0, "a limited run has a group of its own");
        let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 64, |i| i);
        k.flush_stats_if_due();
        let live: usize = (0..4).map(|l| k.reclaim.lists.len_in(g, l)).sum();
        assert!(live >= 64, "the pages are on the group's lists");
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1), 0, "not flushed yet");
        // Half a period in, the first flush: the lists as they are then.
        k.advance_clock_for_test(STATS_FLUSH_NS / 2);
        k.flush_stats_if_due();
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1), live_anon(&k, g));
        // More pages: unseen until the next flush, a period later.
        let b = k.mmap(pid, MmapArgs::anon(16 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, b, 16, |i| i);
        k.flush_stats_if_due();
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1) + 16, live_anon(&k, g));
        k.advance_clock_for_test(STATS_FLUSH_NS);
        k.flush_stats_if_due();
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1), live_anon(&k, g));
        // The root reads its lists as they are; so does a group with flushing off.
        assert_eq!(k.seen_len(0, 0), k.reclaim.lists.len_in(0, 0));
        let c = k.mmap(pid, MmapArgs::anon(4 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, c, 4, |i| i);
        k.config.stats_flush_ns = 0;
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1), live_anon(&k, g));
    }

    #[test]
    fn the_first_flush_comes_at_the_phase_asked() {
        // A quarter period in, where the default would wait for half a period.
        let phase = STATS_FLUSH_NS / 4;
        let mut k = boot_with("x86-64", |c| {
            c.memory_max = Some(32 << 20);
            c.stats_flush_phase_ns = Some(phase);
        });
        let pid = spawn(&mut k);
        let g = k.process(pid).unwrap().group.0;
        let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 64, |i| i);
        k.flush_stats_if_due();
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1), 0, "not flushed yet");
        k.advance_clock_for_test(phase);
        k.flush_stats_if_due();
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1), live_anon(&k, g));
        // The next a whole period after it, not at the default's half period.
        let b = k.mmap(pid, MmapArgs::anon(16 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, b, 16, |i| i);
        k.advance_clock_for_test(STATS_FLUSH_NS / 2);
        k.flush_stats_if_due();
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1) + 16, live_anon(&k, g));
        k.advance_clock_for_test(STATS_FLUSH_NS / 2);
        k.flush_stats_if_due();
        assert_eq!(k.seen_len(g, 0) + k.seen_len(g, 1), live_anon(&k, g));
    }

    #[test]
    fn the_flags_default_is_the_kernels() {
        let ms: u64 = crate::options::defaults::STATS_FLUSH_MS.parse().unwrap();
        let ns = crate::os::KernelConfig::default().stats_flush_ns;
        assert_eq!(ms * 1_000_000, ns);
        assert_eq!(
            ns * super::CLOCK_SPEEDUP_PERCENT,
            super::LINUX_FLUSH_NS * 100
        );
    }

    fn live_anon(k: &crate::os::Kernel, g: u16) -> usize {
        k.reclaim.lists.len_in(g, 0) + k.reclaim.lists.len_in(g, 1)
    }
}
