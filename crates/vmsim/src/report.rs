//! Turning counters into reports: a serialisable summary of the hardware counters and
//! its text rendering.

use crate::hw::mmu::FaultCause;
use crate::hw::Mmu;
use crate::size::format_size;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One TLB's counters.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TlbStats {
    /// Name (`L1d`).
    pub name: String,
    /// Hierarchy level.
    pub level: u32,
    /// Lookups.
    pub lookups: u64,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// hits / lookups (0 when there were none).
    pub hit_rate: f64,
    /// Hits by page size (`"4 KiB"`).
    pub hits_by_page_size: BTreeMap<String, u64>,
    /// Misses by the size of the page the walk found (`"fault"` when it faulted).
    pub misses_by_page_size: BTreeMap<String, u64>,
    /// Valid entries pushed out by fills.
    pub evictions: u64,
}

/// One page-walk cache's counters.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WalkCacheStats {
    /// Page-table level whose entries it caches.
    pub level: u32,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
}

/// Everything the hardware counted.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HwStats {
    /// Translations asked for.
    pub accesses: u64,
    /// Loads, stores, fetches.
    pub reads: u64,
    /// Stores.
    pub writes: u64,
    /// Instruction fetches.
    pub fetches: u64,
    /// TLBs, in level order.
    pub tlbs: Vec<TlbStats>,
    /// Page walks.
    pub walks: u64,
    /// PTEs read by walks.
    pub pte_reads: u64,
    /// PTEs written by walks (Accessed/Dirty updates).
    pub pte_writes: u64,
    /// Walk caches, from the lowest level up.
    pub walk_caches: Vec<WalkCacheStats>,
    /// Faults by cause.
    pub faults: BTreeMap<String, u64>,
    /// Estimated cycles spent translating.
    pub cycles: u64,
    /// cycles / accesses.
    pub cycles_per_access: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl HwStats {
    /// Reads the counters of every CPU's MMU of `m`, summed (one CPU's: its own).
    pub fn from_machine(m: &crate::hw::Machine) -> HwStats {
        let mut total = HwStats::from_mmu(&m.mmu);
        for (c, mmu) in m.mmus().enumerate() {
            if c != m.cpu() {
                total.add(&HwStats::from_mmu(mmu));
            }
        }
        total
    }

    /// Adds another CPU's counters (an MMU of the same shape).
    fn add(&mut self, o: &HwStats) {
        let merge = |a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        };
        self.accesses += o.accesses;
        self.reads += o.reads;
        self.writes += o.writes;
        self.fetches += o.fetches;
        for (t, u) in self.tlbs.iter_mut().zip(&o.tlbs) {
            t.lookups += u.lookups;
            t.hits += u.hits;
            t.misses += u.misses;
            t.hit_rate = ratio(t.hits, t.lookups);
            merge(&mut t.hits_by_page_size, &u.hits_by_page_size);
            merge(&mut t.misses_by_page_size, &u.misses_by_page_size);
            t.evictions += u.evictions;
        }
        self.walks += o.walks;
        self.pte_reads += o.pte_reads;
        self.pte_writes += o.pte_writes;
        for (w, v) in self.walk_caches.iter_mut().zip(&o.walk_caches) {
            w.hits += v.hits;
            w.misses += v.misses;
        }
        merge(&mut self.faults, &o.faults);
        self.cycles += o.cycles;
        self.cycles_per_access = ratio(self.cycles, self.accesses);
    }

    /// Reads the counters of `mmu`.
    pub fn from_mmu(mmu: &Mmu) -> HwStats {
        let p = mmu.paging();
        let size_name = |level: usize| -> String {
            if level == 0 {
                "fault".into()
            } else {
                format_size(p.leaf_size(level as u32))
            }
        };
        let tlbs = mmu
            .tlbs()
            .iter()
            .map(|t| {
                let c = &t.counters;
                let by = |v: &[u64]| -> BTreeMap<String, u64> {
                    v.iter()
                        .enumerate()
                        .filter(|(_, &n)| n > 0)
                        .map(|(l, &n)| (size_name(l), n))
                        .collect()
                };
                let (hits, misses) = (c.total_hits(), c.total_misses());
                TlbStats {
                    name: t.name.clone(),
                    level: t.level,
                    lookups: hits + misses,
                    hits,
                    misses,
                    hit_rate: ratio(hits, hits + misses),
                    hits_by_page_size: by(&c.hits),
                    misses_by_page_size: by(&c.misses),
                    evictions: c.evictions,
                }
            })
            .collect();
        let c = &mmu.counters;
        let accesses = c.total_translations();
        let cycles = mmu.estimated_cycles();
        HwStats {
            accesses,
            reads: c.translations[0],
            writes: c.translations[1],
            fetches: c.translations[2],
            tlbs,
            walks: c.walks,
            pte_reads: c.pte_reads,
            pte_writes: c.pte_writes,
            walk_caches: mmu
                .walk_caches()
                .iter()
                .map(|w| WalkCacheStats {
                    level: w.level,
                    hits: w.counters.hits,
                    misses: w.counters.misses,
                })
                .collect(),
            faults: FaultCause::ALL
                .iter()
                .map(|f| (f.name().to_string(), c.faults_of(*f)))
                .collect(),
            cycles,
            cycles_per_access: ratio(cycles, accesses),
        }
    }

    /// A readable table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "accesses      {:>14}  (reads {}, writes {}, fetches {})",
            self.accesses, self.reads, self.writes, self.fetches
        );
        let _ = writeln!(
            s,
            "\n{:<10} {:>14} {:>14} {:>12} {:>9}  hits by page size",
            "TLB", "lookups", "hits", "misses", "hit rate"
        );
        for t in &self.tlbs {
            let by: Vec<String> = t
                .hits_by_page_size
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(
                s,
                "{:<10} {:>14} {:>14} {:>12} {:>8.2}%  {}",
                t.name,
                t.lookups,
                t.hits,
                t.misses,
                t.hit_rate * 100.0,
                by.join(", ")
            );
        }
        let _ = writeln!(s, "\nwalks         {:>14}", self.walks);
        let _ = writeln!(
            s,
            "PTE reads     {:>14}  ({:.2} per walk)",
            self.pte_reads,
            ratio(self.pte_reads, self.walks)
        );
        let _ = writeln!(
            s,
            "PTE writes    {:>14}  (Accessed/Dirty set by the walker)",
            self.pte_writes
        );
        for w in &self.walk_caches {
            let _ = writeln!(
                s,
                "walk cache L{} {:>14} hits, {} misses ({:.2}%)",
                w.level,
                w.hits,
                w.misses,
                ratio(w.hits, w.hits + w.misses) * 100.0
            );
        }
        let faults: Vec<String> = self
            .faults
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            s,
            "faults        {:>14}  {}",
            self.faults.values().sum::<u64>(),
            faults.join(", ")
        );
        let _ = writeln!(
            s,
            "est. cycles   {:>14}  ({:.2} per access)",
            self.cycles, self.cycles_per_access
        );
        s
    }
}

/// One process in a report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProcessStats {
    /// Its id.
    pub pid: u32,
    /// Its parent's id.
    pub ppid: Option<u32>,
    /// Its program.
    pub name: String,
    /// `running`, `exited(N)` or `killed(SIGNAL)`.
    pub state: String,
    /// Accesses it made.
    pub accesses: u64,
    /// Minor faults.
    pub minor_faults: u64,
    /// Major faults.
    pub major_faults: u64,
    /// Copy-on-write faults.
    pub cow_faults: u64,
    /// Its faults as `getrusage` counts them (copy-on-write and cache hits are minor).
    pub rusage: crate::linux::Rusage,
    /// Resident pages now (at its end, if it ended): anonymous, file, shared memory.
    pub rss: crate::os::Rss,
    /// Most pages resident at once.
    pub peak_rss: u64,
    /// Its own page-table pages (0 once it ended).
    pub page_tables: u64,
    /// Its VMAs (0 once it ended).
    pub vmas: usize,
}

/// What reclaim and swap did.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReclaimStats {
    /// The policy.
    pub policy: String,
    /// Free-frame watermarks.
    pub watermarks: crate::os::Watermarks,
    /// Frames reclaimed.
    pub evictions: u64,
    /// Frames looked at.
    pub scanned: u64,
    /// Allocations that reclaimed first.
    pub direct_reclaims: u64,
    /// Background reclaim runs.
    pub kswapd_runs: u64,
    /// Page-cache pages dropped.
    pub file_evictions: u64,
    /// Dirty file pages written back.
    pub writebacks: u64,
    /// Swap: `ins`, `outs`, slots, bytes; `null` without swap.
    pub swap: Option<crate::os::SwapStats>,
    /// Nanoseconds processes waited on storage (major faults).
    pub io_wait_ns: u64,
    /// Nanoseconds storage spent writing in the background.
    pub io_busy_ns: u64,
    /// Nanoseconds processes slept (the trace's `sleep` events: `nanosleep`).
    pub sleep_ns: u64,
}

/// One CPU of the machine: what ran on it and what its MMU did.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CpuRow {
    /// Its number.
    pub cpu: usize,
    /// Threads placed on it.
    pub threads: u64,
    /// Times another thread took it.
    pub context_switches: u64,
    /// Translations its MMU made.
    pub accesses: u64,
    /// Misses of its first-level TLBs.
    pub tlb_misses: u64,
    /// Its page walks.
    pub walks: u64,
    /// TLB shootdowns it sent.
    pub shootdowns_sent: u64,
    /// TLB shootdown interrupts it received (its column of /proc/interrupts' `TLB`).
    pub shootdowns_received: u64,
}

/// What the kernel counted and holds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KernelStats {
    /// The CPUs, by number.
    pub cpus: Vec<CpuRow>,
    /// Page faults by kind (`demand-zero`, `cow-copy`, ...).
    pub faults: BTreeMap<String, u64>,
    /// Page faults by class: `minor`, `major`, `cow`, `spurious`, `violation`.
    pub faults_by_class: BTreeMap<String, u64>,
    /// Every process's faults as `getrusage` counts them, summed (what a shell's
    /// `wait4` reports for a program and the children it waited for).
    pub rusage: crate::linux::Rusage,
    /// `/proc/vmstat`'s fields, counted from the start of the run.
    pub vmstat: crate::linux::Vmstat,
    /// Stack VMAs grown by faults.
    pub stack_growths: u64,
    /// Pages read from files.
    pub file_reads: u64,
    /// Pages `write` put in the page cache.
    pub file_writes: u64,
    /// Context switches.
    pub context_switches: u64,
    /// ASID roll-overs.
    pub asid_rollovers: u64,
    /// `fork`s.
    pub forks: u64,
    /// Processes sent SIGSEGV or SIGBUS.
    pub signals: u64,
    /// Processes the OOM killer took.
    pub oom_kills: u64,
    /// Cycles spent in the fault handler.
    pub fault_cycles: u64,
    /// Cycles spent reading pages in from storage and evicting them (besides waiting).
    pub paging_cycles: u64,
    /// Bytes of instructions the program fetched, as its trace gives its fetches'
    /// lengths; the clock counts the program's time by them (`KernelConfig::fetch_clock_pct`).
    pub fetched_bytes: u64,
    /// CPU time the clock counted for those instructions, in nanoseconds (summed over
    /// CPUs).
    pub program_ns: u64,
    /// Simulated time from the start to the end of the run, in nanoseconds: every
    /// cycle at the clock rate, plus the time spent waiting for storage queues and
    /// asleep (the time Linux's `time` calls elapsed).
    pub elapsed_ns: u64,
    /// Frames of RAM.
    pub ram_frames: u64,
    /// Free frames.
    pub free_frames: u64,
    /// Frames in use, by what they hold (`anon`, `file`, `shm`, `page-table`, `kernel`,
    /// `reserved`).
    pub frames_by_kind: BTreeMap<String, u64>,
    /// Bytes committed (`Committed_AS`).
    pub committed_bytes: u64,
    /// Reclaim and swap.
    pub reclaim: ReclaimStats,
    /// The memory groups (the root `/` first; `workload` under `--memory-max`): limit,
    /// pages charged now and at most, OOM kills.
    pub groups: Vec<crate::os::MemGroup>,
    /// The hugetlb pools (`--hugepages`), smallest page first: `/proc/meminfo`'s
    /// `HugePages_Total`, `HugePages_Free` and `HugePages_Rsvd` for each size.
    pub hugetlb: Vec<crate::os::hugetlb::HugePoolStats>,
    /// The buddy allocator's free blocks per order and the unusable-free-space index
    /// for the first huge-page order.
    pub fragmentation: crate::os::buddy::Fragmentation,
    /// The processes, by pid.
    pub processes: Vec<ProcessStats>,
    /// Signals and OOM kills, in order.
    pub events: Vec<crate::os::Event>,
    /// The text display's screen, if the machine has one and something is on it.
    pub display: Option<String>,
}

impl KernelStats {
    /// Reads the kernel's counters and state.
    pub fn from_kernel(k: &crate::os::Kernel) -> KernelStats {
        use crate::os::{FaultClass, FaultKind, FrameKind, ProcState};
        let c = &k.counters();
        let classes = [
            ("minor", FaultClass::Minor),
            ("major", FaultClass::Major),
            ("cow", FaultClass::Cow),
            ("spurious", FaultClass::Spurious),
            ("violation", FaultClass::Violation),
        ];
        let in_class = |faults: &[u64], class: FaultClass| -> u64 {
            FaultKind::ALL
                .iter()
                .filter(|f| f.class() == class)
                .map(|&f| faults[f as usize])
                .sum()
        };
        let kinds = [
            ("anon", FrameKind::Anon),
            ("file", FrameKind::File),
            ("shm", FrameKind::Shm),
            ("page-table", FrameKind::Table),
            ("kernel", FrameKind::Kernel),
            ("reserved", FrameKind::Reserved),
        ];
        let processes = k
            .processes()
            .iter()
            .map(|p| ProcessStats {
                pid: p.pid.0,
                ppid: p.ppid.map(|x| x.0),
                name: p.name.clone(),
                state: match p.state {
                    ProcState::Running => "running".into(),
                    ProcState::Exited(code) => format!("exited({code})"),
                    ProcState::Killed(s) => format!("killed({s})"),
                },
                accesses: p.stats.accesses,
                minor_faults: in_class(&p.stats.faults, FaultClass::Minor),
                major_faults: in_class(&p.stats.faults, FaultClass::Major),
                cow_faults: in_class(&p.stats.faults, FaultClass::Cow),
                rusage: crate::linux::Rusage::from_faults(&p.stats.faults),
                rss: p.rss(),
                peak_rss: p.stats.peak_rss,
                page_tables: k.table_pages(p.pid),
                vmas: p.mm.as_ref().map_or(0, |m| m.vmas.len()),
            })
            .collect();
        let cpus = k
            .cpu_stats()
            .iter()
            .zip(k.machine().mmus())
            .enumerate()
            .map(|(cpu, (st, mmu))| CpuRow {
                cpu,
                threads: st.threads,
                context_switches: st.context_switches,
                accesses: mmu.counters.total_translations(),
                tlb_misses: mmu
                    .tlbs()
                    .iter()
                    .filter(|t| t.level == 1)
                    .map(|t| t.counters.total_misses())
                    .sum(),
                walks: mmu.counters.walks,
                shootdowns_sent: st.shootdowns_sent,
                shootdowns_received: st.shootdowns_received,
            })
            .collect();
        KernelStats {
            cpus,
            rusage: crate::linux::Rusage::from_faults(&c.faults),
            vmstat: crate::linux::Vmstat::from_counters(c, k.page_size()),
            faults: FaultKind::ALL
                .iter()
                .map(|&f| (f.name().to_string(), c.faults[f as usize]))
                .collect(),
            faults_by_class: classes
                .iter()
                .map(|&(n, cl)| (n.to_string(), in_class(&c.faults, cl)))
                .collect(),
            stack_growths: c.stack_growths,
            file_reads: c.file_reads,
            file_writes: c.file_writes,
            context_switches: c.switches,
            asid_rollovers: c.asid_rollovers,
            forks: c.forks,
            signals: c.signals,
            oom_kills: c.oom_kills,
            fault_cycles: c.fault_cycles,
            paging_cycles: c.paging_cycles,
            fetched_bytes: c.fetched_bytes,
            program_ns: k.program_ns(),
            elapsed_ns: k.io_now(),
            ram_frames: k.frames().nr_frames(),
            free_frames: k.frames().nr_free(),
            frames_by_kind: kinds
                .iter()
                .map(|&(n, kind)| (n.to_string(), k.frames().nr_of(kind)))
                .collect(),
            committed_bytes: k.committed(),
            groups: k.groups().to_vec(),
            hugetlb: k.huge_pools(),
            fragmentation: {
                let p = &k.machine().spec.paging;
                let huge = p
                    .leaf_levels()
                    .filter(|&l| l > 1)
                    .map(|l| p.level_shift(l) - p.page_shift)
                    .min()
                    .unwrap_or(9);
                k.frames().fragmentation(huge)
            },
            reclaim: ReclaimStats {
                policy: k.config().reclaim.name().to_string(),
                watermarks: k.watermarks(),
                evictions: c.pages_reclaimed,
                scanned: c.pages_scanned,
                direct_reclaims: c.direct_reclaims,
                kswapd_runs: c.kswapd_runs,
                file_evictions: c.file_evictions,
                writebacks: c.writebacks,
                swap: k.swap_stats().cloned(),
                io_wait_ns: c.io_wait_ns,
                sleep_ns: c.sleep_ns,
                io_busy_ns: c.io_busy_ns,
            },
            processes,
            events: k.events().to_vec(),
            display: k.display().filter(|d| !d.is_blank()).map(|d| d.screen()),
        }
    }

    /// A readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let total: u64 = self.faults_by_class.values().sum();
        let _ = writeln!(s, "page faults   {total:>14}");
        for class in ["minor", "major", "cow", "spurious", "violation"] {
            let n = self.faults_by_class.get(class).copied().unwrap_or(0);
            let kinds: Vec<String> = crate::os::FaultKind::ALL
                .iter()
                .filter(|f| {
                    let c = match f.class() {
                        crate::os::FaultClass::Minor => "minor",
                        crate::os::FaultClass::Major => "major",
                        crate::os::FaultClass::Cow => "cow",
                        crate::os::FaultClass::Spurious => "spurious",
                        crate::os::FaultClass::Violation => "violation",
                    };
                    c == class
                })
                .filter_map(|f| {
                    let v = self.faults.get(f.name()).copied().unwrap_or(0);
                    (v > 0).then(|| format!("{} {v}", f.name()))
                })
                .collect();
            let _ = writeln!(s, "  {class:<11} {n:>14}  {}", kinds.join(", "));
        }
        let v = &self.vmstat;
        let _ = writeln!(
            s,
            "as Linux counts them: minflt {} majflt {}; pgfault {} pgmajfault {} pswpin {} pswpout {} pgpgin {} pgpgout {}",
            self.rusage.minflt,
            self.rusage.majflt,
            v.pgfault,
            v.pgmajfault,
            v.pswpin,
            v.pswpout,
            v.pgpgin,
            v.pgpgout
        );
        let thp = [
            v.thp_fault_alloc,
            v.thp_fault_fallback,
            v.thp_split_pmd,
            v.thp_split_page,
            v.thp_zero_page_alloc,
            v.thp_collapse_alloc,
        ];
        if thp.iter().any(|&n| n > 0) {
            let _ = writeln!(
                s,
                "huge pages: thp_fault_alloc {} thp_fault_fallback {} thp_split_pmd {} thp_split_page {} thp_zero_page_alloc {} thp_collapse_alloc {}; mapped whole at the end {}",
                thp[0], thp[1], thp[2], thp[3], thp[4], thp[5], v.nr_anon_transparent_hugepages
            );
        }
        for p in self.hugetlb.iter().filter(|p| p.total + p.sigbus > 0) {
            let _ = writeln!(
                s,
                "hugetlb {}: HugePages_Total {} HugePages_Free {} HugePages_Rsvd {}; faulted in {}, SIGBUS {}",
                crate::size::format_size(p.page_bytes),
                p.total,
                p.free,
                p.rsvd,
                p.faults,
                p.sigbus
            );
        }
        for g in self.groups.iter().filter(|g| g.max_pages.is_some()) {
            let st = &g.stat;
            let _ = writeln!(
                s,
                "group {} (max {} pages, peak {}): anon {} file {} shmem {}; pgfault {} pgmajfault {} pswpin {} pswpout {} pgscan {} pgsteal {} workingset_refault_anon {} workingset_refault_file {} oom_kill {}",
                g.name,
                g.max_pages.unwrap_or(0),
                g.peak,
                st.anon,
                st.file,
                st.shmem,
                st.pgfault,
                st.pgmajfault,
                st.pswpin,
                st.pswpout,
                st.pgscan,
                st.pgsteal,
                st.workingset_refault_anon,
                st.workingset_refault_file,
                g.oom_kills
            );
        }
        let _ = writeln!(
            s,
            "stack growths {:>14}\nfile reads    {:>14}\nfile writes   {:>14}\nswitches      {:>14}  (ASID roll-overs {})\nforks         {:>14}\nsignals       {:>14}  (OOM kills {})",
            self.stack_growths,
            self.file_reads,
            self.file_writes,
            self.context_switches,
            self.asid_rollovers,
            self.forks,
            self.signals,
            self.oom_kills
        );
        let v = &self.vmstat;
        let _ = writeln!(
            s,
            "TLB flushes   {:>14}  pages one by one, {} whole (local); shootdowns {} sent, {} received",
            v.nr_tlb_local_flush_one,
            v.nr_tlb_local_flush_all,
            v.nr_tlb_remote_flush,
            v.nr_tlb_remote_flush_received
        );
        if self.cpus.len() > 1 {
            let _ = writeln!(
                s,
                "\n cpu  threads switches       accesses  TLB misses      walks  shootdowns sent/received"
            );
            for c in &self.cpus {
                let _ = writeln!(
                    s,
                    "{:>4} {:>8} {:>8} {:>14} {:>11} {:>10}  {}/{}",
                    c.cpu,
                    c.threads,
                    c.context_switches,
                    c.accesses,
                    c.tlb_misses,
                    c.walks,
                    c.shootdowns_sent,
                    c.shootdowns_received
                );
            }
        }
        let used: Vec<String> = self
            .frames_by_kind
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "\nframes        {:>14}  free {}; in use: {}",
            self.ram_frames,
            self.free_frames,
            used.join(", ")
        );
        let _ = writeln!(s, "committed     {:>14}", format_size(self.committed_bytes));
        let f = &self.fragmentation;
        let blocks: Vec<String> = f
            .free_blocks
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(o, n)| format!("{o}:{n}"))
            .collect();
        let _ = writeln!(
            s,
            "free blocks   {:>14}  by order {}; unusable-free-space index for order {}: {:.3}",
            f.free_frames,
            blocks.join(" "),
            f.index_order,
            f.unusable_index
        );
        let r = &self.reclaim;
        let _ = writeln!(
            s,
            "reclaim       {:>14}  evicted by {} (scanned {}, direct {}, kswapd runs {}, watermarks {}/{}/{}); file pages dropped {}, written back {}",
            r.evictions,
            r.policy,
            r.scanned,
            r.direct_reclaims,
            r.kswapd_runs,
            r.watermarks.min,
            r.watermarks.low,
            r.watermarks.high,
            r.file_evictions,
            r.writebacks
        );
        match &r.swap {
            Some(sw) => {
                let _ = writeln!(
                    s,
                    "swap          {:>14}  out, {} in; {} of {} slots used (peak {})",
                    sw.outs, sw.ins, sw.used, sw.slots, sw.peak_used
                );
            }
            None => {
                let _ = writeln!(s, "swap          {:>14}", "none");
            }
        }
        let _ = writeln!(
            s,
            "storage wait  {:>14}  waiting on major faults; {:.3} ms writing in the background",
            format!("{:.3} ms", r.io_wait_ns as f64 / 1e6),
            r.io_busy_ns as f64 / 1e6
        );
        if r.sleep_ns > 0 {
            let _ = writeln!(
                s,
                "asleep        {:>14}  the program's sleeps (nanosleep)",
                format!("{:.3} ms", r.sleep_ns as f64 / 1e6)
            );
        }
        if self.program_ns > 0 {
            let _ = writeln!(
                s,
                "computing     {:>14}  the program's instructions ({} bytes fetched), CPU time",
                format!("{:.3} ms", self.program_ns as f64 / 1e6),
                self.fetched_bytes
            );
        }
        let _ = writeln!(
            s,
            "elapsed       {:>14}  simulated: cycles at the clock, storage queues, sleeps",
            format!("{:.3} ms", self.elapsed_ns as f64 / 1e6)
        );
        let _ = writeln!(
            s,
            "\n{:>4} {:>5} {:<10} {:<24} {:>10} {:>7} {:>6} {:>6} {:>16} {:>6} {:>6}",
            "pid",
            "ppid",
            "name",
            "state",
            "accesses",
            "minor",
            "major",
            "cow",
            "rss anon/file/shm",
            "peak",
            "tables"
        );
        for p in &self.processes {
            let _ = writeln!(
                s,
                "{:>4} {:>5} {:<10} {:<24} {:>10} {:>7} {:>6} {:>6} {:>16} {:>6} {:>6}",
                p.pid,
                p.ppid.map_or("-".to_string(), |x| x.to_string()),
                p.name,
                p.state,
                p.accesses,
                p.minor_faults,
                p.major_faults,
                p.cow_faults,
                format!("{}/{}/{}", p.rss.anon, p.rss.file, p.rss.shmem),
                p.peak_rss,
                p.page_tables
            );
        }
        if !self.events.is_empty() {
            let _ = writeln!(s, "\nevents");
            for e in &self.events {
                let _ = match e {
                    crate::os::Event::Signal {
                        pid,
                        name,
                        signal,
                        va,
                        reason,
                        killed,
                    } => writeln!(
                        s,
                        "  pid {pid} ({name}): {signal} at {va:#x}: {reason}{}",
                        if *killed { "; killed" } else { "" }
                    ),
                    crate::os::Event::OomKill {
                        pid,
                        name,
                        rss_pages,
                        group,
                        reason,
                    } => writeln!(
                        s,
                        "  pid {pid} ({name}): killed by the OOM killer ({reason}; {rss_pages} resident pages{})",
                        group.as_ref().map_or(String::new(), |g| format!(", group {g}"))
                    ),
                };
            }
        }
        if let Some(d) = &self.display {
            let _ = writeln!(s, "\ndisplay");
            for line in d.lines().filter(|l| !l.is_empty()) {
                let _ = writeln!(s, "  | {line}");
            }
        }
        s
    }
}

/// One TLB's hits and misses, for [`RunSummary`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TlbSummary {
    /// Name (`L1d`).
    pub name: String,
    /// Hierarchy level.
    pub level: u32,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
}

/// Faults by class, for [`RunSummary`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FaultSummary {
    /// Minor faults (no I/O).
    pub minor: u64,
    /// Major faults (a file or swap read).
    pub major: u64,
    /// Copy-on-write faults.
    pub cow: u64,
    /// Accesses refused with SIGSEGV or SIGBUS.
    pub segv: u64,
    /// Spurious faults (stale TLB entries).
    pub spurious: u64,
}

/// Swap traffic, for [`RunSummary`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SwapSummary {
    /// Pages read back.
    pub ins: u64,
    /// Pages written out.
    pub outs: u64,
}

/// One process's peak, for [`RunSummary`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProcessPeak {
    /// Its id.
    pub pid: u32,
    /// Its program.
    pub name: String,
    /// Most pages resident at once.
    pub peak_rss_pages: u64,
    /// The same in bytes.
    pub peak_rss_bytes: u64,
}

/// The headline numbers of a run, as `vmsim run --json` and `vmsim sweep` print them.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RunSummary {
    /// Linux's counters for the run, for sweep rows (the JSON report has them in full
    /// under `kernel`).
    #[serde(skip)]
    pub linux: crate::linux::LinuxRow,
    /// Memory accesses.
    pub accesses: u64,
    /// Every TLB's hits and misses, in level order.
    pub tlb: Vec<TlbSummary>,
    /// Page walks.
    pub walks: u64,
    /// Faults by class.
    pub faults: FaultSummary,
    /// Swap traffic.
    pub swap: SwapSummary,
    /// Frames reclaimed.
    pub evictions: u64,
    /// Each process's peak resident set.
    pub processes: Vec<ProcessPeak>,
    /// Estimated cycles: translation, fault handling, and moving pages in and out.
    pub cycles: u64,
    /// Nanoseconds processes waited on storage.
    pub io_wait_ns: u64,
    /// Simulated time from the start to the end of the run, in nanoseconds (see
    /// [`KernelStats::elapsed_ns`]).
    pub elapsed_ns: u64,
}

impl RunSummary {
    /// Reads the headline numbers of `k` after `accesses` accesses.
    pub fn from_kernel(k: &crate::os::Kernel, accesses: u64) -> RunSummary {
        use crate::os::FaultClass;
        let m = k.machine();
        let c = &k.counters();
        let ps = k.page_size();
        RunSummary {
            linux: crate::linux::LinuxRow::from_counters(c, ps),
            accesses,
            tlb: (0..m.mmu.tlbs().len())
                .map(|i| {
                    let t = &m.mmu.tlbs()[i];
                    let sum = |f: fn(&crate::hw::Tlb) -> u64| -> u64 {
                        m.mmus().map(|mmu| f(&mmu.tlbs()[i])).sum()
                    };
                    TlbSummary {
                        name: t.name.clone(),
                        level: t.level,
                        hits: sum(|t| t.counters.total_hits()),
                        misses: sum(|t| t.counters.total_misses()),
                    }
                })
                .collect(),
            walks: m.mmus().map(|mmu| mmu.counters.walks).sum(),
            faults: FaultSummary {
                minor: c.faults_in(FaultClass::Minor),
                major: c.faults_in(FaultClass::Major),
                cow: c.faults_in(FaultClass::Cow),
                segv: c.faults_in(FaultClass::Violation),
                spurious: c.faults_in(FaultClass::Spurious),
            },
            swap: SwapSummary {
                ins: c.swap_ins,
                outs: c.swap_outs,
            },
            evictions: c.pages_reclaimed,
            processes: k
                .processes()
                .iter()
                .map(|p| ProcessPeak {
                    pid: p.pid.0,
                    name: p.name.clone(),
                    peak_rss_pages: p.stats.peak_rss,
                    peak_rss_bytes: p.stats.peak_rss * ps,
                })
                .collect(),
            cycles: m.estimated_cycles() + c.fault_cycles + c.paging_cycles + c.tlb.cycles,
            io_wait_ns: c.io_wait_ns,
            elapsed_ns: k.io_now(),
        }
    }
}
