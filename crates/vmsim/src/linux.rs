//! vmsim's counters by Linux's names and definitions: what `getrusage` and `wait4`
//! report as `minflt` and `majflt`, and the `/proc/vmstat` fields a run changes. They
//! sit beside vmsim's finer fault classes, so a run can be set next to what Linux says
//! about the same program.
//!
//! Linux counts a fault in `pgfault` when it reaches the fault handler proper
//! (`handle_mm_fault`), SIGBUS ones included; a fault on an address no VMA holds, or
//! that the VMA forbids, is refused before and counted nowhere. Of the faults handled,
//! those that waited for storage (a file page read, a page read from swap) are major;
//! every other one is minor: page-cache hits, swap-cache hits, copy-on-write, the
//! zero page, and a spurious fault on a stale TLB entry.

use crate::os::fault::{FaultKind, NR_FAULT_KINDS};
use crate::os::KernelCounters;
use serde::Serialize;

/// `getrusage`'s page-fault fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rusage {
    /// Faults handled without waiting for storage.
    pub minflt: u64,
    /// Faults that waited for storage.
    pub majflt: u64,
}

/// Whether Linux counts a fault of `kind` in `pgfault`.
pub fn counts_as_pgfault(kind: FaultKind) -> bool {
    !matches!(
        kind,
        FaultKind::SegvNoVma | FaultKind::SegvAccess | FaultKind::SegvKernel
    )
}

/// Whether Linux counts a fault of `kind` as major.
pub fn is_major(kind: FaultKind) -> bool {
    matches!(kind, FaultKind::FileRead | FaultKind::SwapIn)
}

impl Rusage {
    /// From faults counted by kind (a process's, or the whole run's).
    pub fn from_faults(faults: &[u64; NR_FAULT_KINDS]) -> Rusage {
        let mut r = Rusage::default();
        for &k in FaultKind::ALL.iter() {
            let n = faults[k as usize];
            if is_major(k) {
                r.majflt += n;
            } else if counts_as_pgfault(k) && k != FaultKind::Bus {
                r.minflt += n;
            }
        }
        r
    }
}

/// The CSV columns of a [`LinuxRow`], as a literal, so that the headers of the
/// interval series and of a sweep can end with them (`concat!`).
#[macro_export]
macro_rules! linux_row_csv_header {
    () => {
        "minflt,majflt,pgfault,pgmajfault,pswpin,pswpout,pgpgin,pgpgout,thp_fault_alloc,thp_split_pmd,nr_tlb_remote_flush,pgscan_kswapd,pgscan_direct,pgsteal_kswapd,pgsteal_direct,pgactivate,pgdeactivate,pgrefill,workingset_refault_anon,workingset_refault_file,workingset_activate_anon,workingset_activate_file,oom_kill"
    };
}

/// The counters by Linux's names every row of a time series or a sweep carries, so
/// that a CSV column reads as Linux's: the run's `rusage` and the `/proc/vmstat`
/// fields that say what reclaim did (the whole set is in the report's `vmstat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinuxRow {
    /// `getrusage`'s minor faults.
    pub minflt: u64,
    /// `getrusage`'s major faults.
    pub majflt: u64,
    /// `/proc/vmstat` `pgfault`.
    pub pgfault: u64,
    /// `pgmajfault`.
    pub pgmajfault: u64,
    /// `pswpin`.
    pub pswpin: u64,
    /// `pswpout`.
    pub pswpout: u64,
    /// `pgpgin` (KiB).
    pub pgpgin: u64,
    /// `pgpgout` (KiB).
    pub pgpgout: u64,
    /// `thp_fault_alloc`.
    pub thp_fault_alloc: u64,
    /// `thp_split_pmd`.
    pub thp_split_pmd: u64,
    /// `nr_tlb_remote_flush`: TLB shootdowns sent.
    pub nr_tlb_remote_flush: u64,
    /// `pgscan_kswapd`: pages background reclaim looked at.
    pub pgscan_kswapd: u64,
    /// `pgscan_direct`: pages direct reclaim of the machine looked at (a memory
    /// group's reclaim at its limit counts in its `memory.stat` only, as on Linux).
    pub pgscan_direct: u64,
    /// `pgsteal_kswapd`: pages background reclaim freed.
    pub pgsteal_kswapd: u64,
    /// `pgsteal_direct`: pages direct reclaim of the machine freed.
    pub pgsteal_direct: u64,
    /// `pgactivate`: pages moved to an active list.
    pub pgactivate: u64,
    /// `pgdeactivate`: pages moved to an inactive list.
    pub pgdeactivate: u64,
    /// `pgrefill`: active pages the machine's reclaim looked at.
    pub pgrefill: u64,
    /// `workingset_refault_anon`: swapped-out pages read back that left a shadow.
    pub workingset_refault_anon: u64,
    /// `workingset_refault_file`: file pages read back that left a shadow.
    pub workingset_refault_file: u64,
    /// `workingset_activate_anon`: of those anonymous refaults, the ones activated.
    pub workingset_activate_anon: u64,
    /// `workingset_activate_file`: of the file refaults, the ones activated.
    pub workingset_activate_file: u64,
    /// `oom_kill`: processes the OOM killer killed.
    pub oom_kill: u64,
}

impl LinuxRow {
    /// Its CSV columns.
    pub const CSV_HEADER: &'static str = linux_row_csv_header!();

    /// From the kernel's counters, for pages of `page_size` bytes.
    pub fn from_counters(c: &KernelCounters, page_size: u64) -> LinuxRow {
        let r = Rusage::from_faults(&c.faults);
        let v = Vmstat::from_counters(c, page_size);
        LinuxRow {
            minflt: r.minflt,
            majflt: r.majflt,
            pgfault: v.pgfault,
            pgmajfault: v.pgmajfault,
            pswpin: v.pswpin,
            pswpout: v.pswpout,
            pgpgin: v.pgpgin,
            pgpgout: v.pgpgout,
            thp_fault_alloc: v.thp_fault_alloc,
            thp_split_pmd: v.thp_split_pmd,
            nr_tlb_remote_flush: v.nr_tlb_remote_flush,
            pgscan_kswapd: v.pgscan_kswapd,
            pgscan_direct: v.pgscan_direct,
            pgsteal_kswapd: v.pgsteal_kswapd,
            pgsteal_direct: v.pgsteal_direct,
            pgactivate: v.pgactivate,
            pgdeactivate: v.pgdeactivate,
            pgrefill: v.pgrefill,
            workingset_refault_anon: v.workingset_refault_anon,
            workingset_refault_file: v.workingset_refault_file,
            workingset_activate_anon: v.workingset_activate_anon,
            workingset_activate_file: v.workingset_activate_file,
            oom_kill: v.oom_kill,
        }
    }

    /// Its values, in [`CSV_HEADER`](Self::CSV_HEADER)'s order.
    fn values(&self) -> [u64; 23] {
        [
            self.minflt,
            self.majflt,
            self.pgfault,
            self.pgmajfault,
            self.pswpin,
            self.pswpout,
            self.pgpgin,
            self.pgpgout,
            self.thp_fault_alloc,
            self.thp_split_pmd,
            self.nr_tlb_remote_flush,
            self.pgscan_kswapd,
            self.pgscan_direct,
            self.pgsteal_kswapd,
            self.pgsteal_direct,
            self.pgactivate,
            self.pgdeactivate,
            self.pgrefill,
            self.workingset_refault_anon,
            self.workingset_refault_file,
            self.workingset_activate_anon,
            self.workingset_activate_file,
            self.oom_kill,
        ]
    }

    /// Its CSV fields, in [`CSV_HEADER`](Self::CSV_HEADER)'s order.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for (i, v) in self.values().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&v.to_string());
        }
        out
    }
}

/// The `/proc/vmstat` fields a run changes, counted from the run's start. Fields
/// vmsim does not model yet are `None` (JSON `null`), never a made-up 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Vmstat {
    /// Faults that reached the handler.
    pub pgfault: u64,
    /// Of those, major.
    pub pgmajfault: u64,
    /// Pages read from swap (at a fault and by readahead).
    pub pswpin: u64,
    /// Pages written to swap.
    pub pswpout: u64,
    /// Pages of zeros swapped in without a read (the swap zeromap's, Linux 6.12+).
    pub swpin_zero: u64,
    /// Pages of zeros swapped out without a write (the swap zeromap's, Linux 6.12+).
    pub swpout_zero: u64,
    /// Pages swap readahead read beside the faulting ones.
    pub swap_ra: u64,
    /// Of those, pages a fault then found in the swap cache.
    pub swap_ra_hit: u64,
    /// KiB read from storage (file pages and swap).
    pub pgpgin: u64,
    /// KiB written to storage (write-back and swap).
    pub pgpgout: u64,
    /// Pages background reclaim looked at.
    pub pgscan_kswapd: u64,
    /// Pages direct reclaim looked at.
    pub pgscan_direct: u64,
    /// Pages background reclaim freed.
    pub pgsteal_kswapd: u64,
    /// Pages direct reclaim freed.
    pub pgsteal_direct: u64,
    /// Pages reclaim looked at on the anonymous inactive list, by any reclaim (a
    /// memory group's too). `None` under FIFO and CLOCK reclaim, which keep one list.
    pub pgscan_anon: Option<u64>,
    /// Pages reclaim looked at on the file inactive list.
    pub pgscan_file: Option<u64>,
    /// Pages reclaim freed off the anonymous inactive list.
    pub pgsteal_anon: Option<u64>,
    /// Pages reclaim freed off the file inactive list.
    pub pgsteal_file: Option<u64>,
    /// Pages moved to the active list.
    pub pgactivate: u64,
    /// Pages moved to the inactive list.
    pub pgdeactivate: u64,
    /// Pages moved to the inactive tail at the end of their swap write, for reclaim
    /// to free next.
    pub pgrotated: u64,
    /// Active-list pages scanned (by the machine's reclaim: a memory group's reclaim
    /// at its limit is not counted here, as Linux does not count it).
    pub pgrefill: u64,
    /// Anonymous pages read back from swap after reclaim took them (found by their
    /// shadow entries).
    pub workingset_refault_anon: u64,
    /// File pages read back into the page cache after reclaim took them.
    pub workingset_refault_file: u64,
    /// Refaulted anonymous pages whose refault distance put them straight on the
    /// active list (two-list reclaim only; 0 otherwise).
    pub workingset_activate_anon: u64,
    /// Refaulted file pages activated at once.
    pub workingset_activate_file: u64,
    /// Page-cache nodes of shadow entries freed by the shadow shrinker (their pages
    /// come back without counting a refault).
    pub workingset_nodereclaim: u64,
    /// Processes the OOM killer killed.
    pub oom_kill: u64,
    /// Pages `madvise(MADV_FREE)` let go.
    pub pglazyfree: u64,
    /// Of those, pages reclaim dropped without writing them (not written since).
    pub pglazyfreed: u64,
    /// Pages locked in RAM (`mlock`, a fault in a locked mapping, ...).
    pub unevictable_pgs_mlocked: u64,
    /// Locked pages unlocked while still in use.
    pub unevictable_pgs_munlocked: u64,
    /// Locked pages freed.
    pub unevictable_pgs_cleared: u64,
    /// Huge pages a fault allocated.
    pub thp_fault_alloc: u64,
    /// Faults that wanted a huge page and took base pages.
    pub thp_fault_fallback: u64,
    /// Of those, the ones whose memory group could not take the charge.
    pub thp_fault_fallback_charge: u64,
    /// Huge pages khugepaged allocated to collapse a range into.
    pub thp_collapse_alloc: u64,
    /// Collapses khugepaged gave up for want of a huge page.
    pub thp_collapse_alloc_failed: u64,
    /// Huge mappings split into base-page entries.
    pub thp_split_pmd: u64,
    /// Huge pages split into base pages.
    pub thp_split_page: u64,
    /// Huge zero pages made.
    pub thp_zero_page_alloc: u64,
    /// Huge pages swapped out whole (never, in vmsim: reclaim splits them).
    pub thp_swpout: u64,
    /// Huge pages split to be swapped out page by page.
    pub thp_swpout_fallback: u64,
    /// Huge pages mapped whole at the end (a gauge, as /proc/vmstat's).
    pub nr_anon_transparent_hugepages: u64,
    /// TLB shootdowns sent to other CPUs (Linux counts the `nr_tlb_*` fields only
    /// with `CONFIG_DEBUG_TLBFLUSH`).
    pub nr_tlb_remote_flush: u64,
    /// TLB shootdown interrupts received (the sum of /proc/interrupts' `TLB` row).
    pub nr_tlb_remote_flush_received: u64,
    /// Whole flushes of the TLB of the CPU making a change.
    pub nr_tlb_local_flush_all: u64,
    /// Pages flushed one by one from the TLB of the CPU making a change.
    pub nr_tlb_local_flush_one: u64,
}

impl Vmstat {
    /// From the kernel's counters, for pages of `page_size` bytes.
    pub fn from_counters(c: &KernelCounters, page_size: u64) -> Vmstat {
        let kib = page_size / 1024;
        let mut pgfault = 0;
        let mut pgmajfault = 0;
        for &k in FaultKind::ALL.iter() {
            let n = c.faults[k as usize];
            if counts_as_pgfault(k) {
                pgfault += n;
            }
            if is_major(k) {
                pgmajfault += n;
            }
        }
        // Pages of zeros move without I/O and count in neither (Linux's zeromap).
        let pswpin = c.swap_ins + c.swap_readahead - c.swap_zero_ins;
        let pswpout = c.swap_outs - c.swap_zero_outs;
        // Two-list reclaim counts every page it scans by list; FIFO and CLOCK, which
        // scan one list, count none.
        let by_list = c.pages_scanned == 0 || c.lru_scanned.iter().sum::<u64>() > 0;
        Vmstat {
            pgfault,
            pgmajfault,
            pswpin,
            pswpout,
            swpin_zero: c.swap_zero_ins,
            swpout_zero: c.swap_zero_outs,
            swap_ra: c.swap_readahead,
            swap_ra_hit: c.swap_readahead_hits,
            pgpgin: (c.file_reads + pswpin) * kib,
            pgpgout: (c.writebacks + pswpout) * kib,
            pgscan_kswapd: c.pages_scanned_kswapd,
            // A group's reclaim at its limit counts in its memory.stat, not here.
            pgscan_direct: c.pages_scanned - c.pages_scanned_kswapd - c.pages_scanned_group,
            pgsteal_kswapd: c.pages_reclaimed_kswapd,
            pgsteal_direct: c.pages_reclaimed - c.pages_reclaimed_kswapd - c.pages_reclaimed_group,
            pgscan_anon: by_list.then_some(c.lru_scanned[0]),
            pgscan_file: by_list.then_some(c.lru_scanned[1]),
            pgsteal_anon: by_list.then_some(c.lru_reclaimed[0]),
            pgsteal_file: by_list.then_some(c.lru_reclaimed[1]),
            pgactivate: c.activations,
            pgdeactivate: c.deactivations,
            pgrotated: c.rotated,
            // Like pgscan, a group's reclaim at its limit counts in its memory.stat only.
            pgrefill: c.active_scanned - c.active_scanned_group,
            workingset_refault_anon: c.workingset_refault[0],
            workingset_refault_file: c.workingset_refault[1],
            workingset_activate_anon: c.workingset_activate[0],
            workingset_activate_file: c.workingset_activate[1],
            workingset_nodereclaim: c.workingset_nodereclaim,
            oom_kill: c.oom_kills,
            pglazyfree: c.lazyfree,
            pglazyfreed: c.lazyfree_discards,
            unevictable_pgs_mlocked: c.mlock.mlocked,
            unevictable_pgs_munlocked: c.mlock.munlocked,
            unevictable_pgs_cleared: c.mlock.cleared,
            thp_fault_alloc: c.thp.fault_alloc,
            thp_fault_fallback: c.thp.fault_fallback,
            thp_fault_fallback_charge: c.thp.fault_fallback_charge,
            thp_collapse_alloc: c.thp.collapse_alloc,
            thp_collapse_alloc_failed: c.thp.collapse_alloc_failed,
            thp_split_pmd: c.thp.split_pmd,
            thp_split_page: c.thp.split_page,
            thp_zero_page_alloc: c.thp.zero_page_alloc,
            thp_swpout: 0,
            thp_swpout_fallback: c.thp.swpout_fallback,
            nr_anon_transparent_hugepages: c.thp.anon_huge_pages,
            nr_tlb_remote_flush: c.tlb.remote_flush,
            nr_tlb_remote_flush_received: c.tlb.remote_flush_received,
            nr_tlb_local_flush_all: c.tlb.local_flush_all,
            nr_tlb_local_flush_one: c.tlb.local_flush_one,
        }
    }

    /// `name value` lines, as /proc/vmstat prints them (fields not modelled are left
    /// out).
    pub fn to_text(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        let mut out = String::new();
        if let Some(o) = v.as_object() {
            for (k, v) in o {
                if let Some(n) = v.as_u64() {
                    out.push_str(&format!("{k} {n}\n"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::*;

    #[test]
    fn minor_and_major_follow_linux_definitions() {
        let mut f = [0u64; NR_FAULT_KINDS];
        f[FaultKind::DemandZero as usize] = 10;
        f[FaultKind::CowCopy as usize] = 3;
        f[FaultKind::SwapCache as usize] = 2;
        f[FaultKind::Spurious as usize] = 1;
        f[FaultKind::FileRead as usize] = 4;
        f[FaultKind::SwapIn as usize] = 5;
        f[FaultKind::Bus as usize] = 7;
        f[FaultKind::SegvNoVma as usize] = 100;
        let r = Rusage::from_faults(&f);
        assert_eq!(
            r,
            Rusage {
                minflt: 16,
                majflt: 9
            }
        );
        let c = KernelCounters {
            faults: f,
            ..KernelCounters::default()
        };
        let v = Vmstat::from_counters(&c, 4096);
        // SIGBUS reaches the handler; a fault outside every VMA does not.
        assert_eq!(v.pgfault, 16 + 9 + 7);
        assert_eq!(v.pgmajfault, 9);
    }

    #[test]
    fn a_run_under_pressure_splits_reclaim_and_counts_swap_as_linux_names_it() {
        let mut k = boot_small(4 << 20, 32 << 20, crate::os::ReclaimPolicy::TwoList);
        fork_under_pressure(&mut k, 512, 2048);
        let v = Vmstat::from_counters(k.counters(), k.page_size());
        let c = k.counters();
        assert!(
            v.pswpout > 0 && v.pswpout == c.swap_outs - c.swap_zero_outs,
            "{v:?}"
        );
        assert!(v.pgscan_kswapd + v.pgsteal_direct > 0, "{v:?}");
        assert!(v.pgrefill >= v.pgdeactivate, "{v:?}");
        assert_eq!(v.pgscan_kswapd + v.pgscan_direct, c.pages_scanned);
        assert_eq!(v.pgsteal_kswapd + v.pgsteal_direct, c.pages_reclaimed);
        assert_eq!(v.pgpgout, (c.writebacks + v.pswpout) * 4);
        assert!(v.to_text().contains("pgfault "));
        assert_eq!(v.workingset_refault_anon, c.workingset_refault[0]);
        assert!(v.to_text().contains("workingset_refault_anon "));
    }

    /// A row's CSV header names its fields (as its JSON does), in the order its CSV
    /// gives their values, and each value is the `/proc/vmstat` field of that name.
    #[test]
    fn a_rows_columns_are_vmstats_fields_by_name() {
        let mut k = boot_small(4 << 20, 32 << 20, crate::os::ReclaimPolicy::TwoList);
        let (parent, _, _, a) = fork_under_pressure(&mut k, 512, 2048);
        // Two areas written in turn, three times: refaults, activations and
        // deactivations too.
        let b = k
            .mmap(parent, MmapArgs::anon(1024 * 4096, Prot::RW))
            .unwrap();
        for round in 0..3 {
            write_pages(&mut k, parent, a, 512, |i| i + round);
            write_pages(&mut k, parent, b, 1024, |i| i + round);
        }
        let row = LinuxRow::from_counters(k.counters(), k.page_size());
        let names: Vec<&str> = LinuxRow::CSV_HEADER.split(',').collect();
        let values: Vec<u64> = row.csv().split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(names.len(), values.len());
        let json = serde_json::to_value(row).unwrap();
        let vmstat =
            serde_json::to_value(Vmstat::from_counters(k.counters(), k.page_size())).unwrap();
        let r = Rusage::from_faults(&k.counters().faults);
        for (name, value) in names.iter().zip(&values) {
            assert_eq!(json[name].as_u64(), Some(*value), "{name} in the JSON");
            let linux = match *name {
                "minflt" => Some(r.minflt),
                "majflt" => Some(r.majflt),
                _ => vmstat[name].as_u64(),
            };
            assert_eq!(linux, Some(*value), "{name} as /proc/vmstat names it");
        }
        assert_eq!(json.as_object().unwrap().len(), names.len());
        assert!(row.pgactivate > 0 && row.pgdeactivate > 0, "{row:?}");
        assert!(
            row.workingset_refault_anon > 0 && row.pgscan_kswapd > 0,
            "{row:?}"
        );
    }
}
