//! Limits: overcommit accounting (`vm.overcommit_memory` 0, 1 and 2), memory groups with
//! a limit like cgroup v2's `memory.max`, and the OOM killer.
//!
//! Until reclaim exists, a group at its limit and a machine out of frames both go
//! straight to the OOM killer: it picks the running process with the most resident
//! pages (in the group, or anywhere), kills it, and logs why.

use super::fault::Violation;
use super::frames::{FrameKind, FrameTable};
use super::process::{ProcState, Signal};
use super::syscall::Errno;
use super::{Event, GroupId, Kernel, Pid};
use crate::addr::Pfn;
use crate::hw::FrameAlloc;
use serde::Serialize;

/// How `mmap`, `brk` and `fork` are checked against memory (`vm.overcommit_memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Overcommit {
    /// Mode 0: refuse only a single request larger than all of RAM and swap.
    Heuristic,
    /// Mode 1: never refuse.
    Always,
    /// Mode 2: refuse once the committed total would pass swap plus
    /// `overcommit_ratio` percent of RAM.
    Never,
}

/// A memory group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemGroup {
    /// Its name.
    pub name: String,
    /// Most pages it may hold (`memory.max`); `None`: no limit.
    pub max_pages: Option<u64>,
    /// Pages charged to it now.
    pub charged: u64,
    /// Most pages it held at once.
    pub peak: u64,
    /// Processes the OOM killer took from it.
    pub oom_kills: u64,
    /// Bytes of kernel objects charged to it now (`kmem.rs`); `stat.kernel` pages.
    pub kernel_bytes: u64,
    /// Its `memory.stat`.
    pub stat: GroupStat,
}

/// A group's counters as cgroup v2's `memory.stat` names them: what is charged to it
/// now (in pages), and what happened to its processes and pages since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupStat {
    /// Anonymous pages charged now.
    pub anon: u64,
    /// Page-cache pages charged now.
    pub file: u64,
    /// Shared-memory pages charged now.
    pub shmem: u64,
    /// Page-table pages of its processes charged now (Linux allocates user page
    /// tables with `__GFP_ACCOUNT`).
    pub pagetables: u64,
    /// Pages of kernel objects charged now besides page tables: kernel stacks and
    /// slab objects (`kmem.rs`), their bytes rounded up to pages.
    pub kernel: u64,
    /// Faults its processes took (as `/proc/vmstat` counts them).
    pub pgfault: u64,
    /// Of those, major.
    pub pgmajfault: u64,
    /// Pages read from swap for its processes (readahead included).
    pub pswpin: u64,
    /// Its pages written to swap.
    pub pswpout: u64,
    /// Pages its own reclaim (at its limit) looked at.
    pub pgscan: u64,
    /// Active-list pages its own reclaim looked at (cgroup v2's `pgrefill`).
    pub pgrefill: u64,
    /// Its pages reclaim freed (its own, or the machine's).
    pub pgsteal: u64,
    /// Its evicted anonymous pages read back.
    pub workingset_refault_anon: u64,
    /// Its evicted file pages read back.
    pub workingset_refault_file: u64,
    /// Of its anonymous refaults, the ones activated.
    pub workingset_activate_anon: u64,
    /// Of its file refaults, the ones activated.
    pub workingset_activate_file: u64,
}

impl GroupStat {
    /// The charge count of frames of `kind`, if it is one memory.stat splits.
    fn count_of(&mut self, kind: FrameKind) -> Option<&mut u64> {
        match kind {
            FrameKind::Anon => Some(&mut self.anon),
            FrameKind::File => Some(&mut self.file),
            FrameKind::Shm => Some(&mut self.shmem),
            FrameKind::Table => Some(&mut self.pagetables),
            _ => None,
        }
    }
}

impl MemGroup {
    /// Charges `n` frames of `kind` to the group, and notes a new peak.
    pub(super) fn charge(&mut self, kind: FrameKind, n: u64) {
        self.charged += n;
        if let Some(c) = self.stat.count_of(kind) {
            *c += n;
        }
        self.peak = self.peak.max(self.charged);
    }

    /// Sets the bytes of kernel objects charged to the group to `bytes`: the group's
    /// charge moves by the difference in whole `page_size` pages.
    pub(super) fn set_kernel_bytes(&mut self, bytes: u64, page_size: u64) {
        let pages = bytes.div_ceil(page_size);
        self.charged = (self.charged + pages).saturating_sub(self.stat.kernel);
        self.stat.kernel = pages;
        self.kernel_bytes = bytes;
        self.peak = self.peak.max(self.charged);
    }

    /// Takes back the charge of one frame of `kind`.
    pub(super) fn uncharge(&mut self, kind: FrameKind) {
        self.charged = self.charged.saturating_sub(1);
        if let Some(c) = self.stat.count_of(kind) {
            *c = c.saturating_sub(1);
        }
    }

    pub(super) fn root() -> MemGroup {
        MemGroup {
            name: "/".into(),
            max_pages: None,
            charged: 0,
            peak: 0,
            oom_kills: 0,
            kernel_bytes: 0,
            stat: GroupStat::default(),
        }
    }
}

/// The memory groups (the root group first) and the commit accounting.
#[derive(Debug)]
pub(super) struct Groups {
    /// Every group, by [`GroupId`].
    pub(super) list: Vec<MemGroup>,
    /// Bytes committed (charged against the overcommit limit).
    pub(super) committed: u64,
    /// The group new processes start in (`workload` under `--memory-max`, else the
    /// root).
    pub(super) workload: GroupId,
    /// Each process's kernel objects and the group they are charged to.
    pub(super) kmem: super::kmem::Ledger,
}

impl Groups {
    /// The root group, and with `memory_max` bytes the `workload` group new processes
    /// start in; nothing committed.
    pub(super) fn new(memory_max: Option<u64>, page_size: u64) -> Groups {
        let mut list = vec![MemGroup::root()];
        if let Some(max) = memory_max {
            list.push(MemGroup {
                name: "workload".into(),
                max_pages: Some(max / page_size),
                ..MemGroup::root()
            });
        }
        Groups {
            workload: GroupId(list.len() as u16 - 1),
            list,
            committed: 0,
            kmem: super::kmem::Ledger::default(),
        }
    }
}

/// The frame allocator for one address space's page tables: each table page is
/// charged to the memory group its root table is charged to, and uncharged from the
/// group it was charged to when it is freed. Linux allocates user page tables with
/// `__GFP_ACCOUNT` (`GFP_PGTABLE_USER`), so they count against a group's limit; the
/// charge itself never reclaims, and the group's next page reclaims what it went over.
pub(super) struct GroupTables<'a> {
    frames: &'a mut FrameTable,
    groups: &'a mut [MemGroup],
    group: u16,
}

impl<'a> GroupTables<'a> {
    /// Tables charged to `group`.
    pub(super) fn charged_to(
        frames: &'a mut FrameTable,
        groups: &'a mut Groups,
        group: GroupId,
    ) -> GroupTables<'a> {
        GroupTables {
            frames,
            groups: &mut groups.list,
            group: group.0,
        }
    }

    /// Tables charged where the table `root` is.
    pub(super) fn of(
        frames: &'a mut FrameTable,
        groups: &'a mut Groups,
        root: Pfn,
    ) -> GroupTables<'a> {
        let group = GroupId(frames.group(root));
        Self::charged_to(frames, groups, group)
    }
}

impl FrameAlloc for GroupTables<'_> {
    fn alloc_frames(&mut self, n: u64) -> Option<Pfn> {
        let g = if (self.group as usize) < self.groups.len() {
            self.group
        } else {
            0
        };
        let pfn = self.frames.alloc(n, FrameKind::Table, g)?;
        self.groups[g as usize].charge(FrameKind::Table, n);
        Some(pfn)
    }

    fn free_frames(&mut self, pfn: Pfn, n: u64) {
        for f in (pfn.0..pfn.0 + n).map(Pfn) {
            if self.frames.kind(f) == FrameKind::Table {
                let g = self.frames.group(f) as usize;
                if let Some(grp) = self.groups.get_mut(g) {
                    grp.uncharge(FrameKind::Table);
                }
            }
        }
        self.frames.release(pfn, n);
    }
}

impl Kernel {
    /// Makes a memory group with a limit of `max_bytes` (rounded down to pages), or
    /// fails with `ENOSPC` once 65,535 groups exist (Linux's `MEM_CGROUP_ID_MAX`; the
    /// last 16-bit number is left unused, to mark "no group").
    pub fn create_group(&mut self, name: &str, max_bytes: Option<u64>) -> Result<GroupId, Errno> {
        if self.groups.list.len() >= usize::from(u16::MAX) {
            return Err(Errno::ENOSPC);
        }
        let ps = self.page_size();
        self.groups.list.push(MemGroup {
            name: name.to_string(),
            max_pages: max_bytes.map(|b| b / ps),
            ..MemGroup::root()
        });
        Ok(GroupId(self.groups.list.len() as u16 - 1))
    }

    /// Moves a process into a group (its pages stay charged where they are, as in
    /// cgroup v2).
    pub fn set_group(&mut self, pid: Pid, group: GroupId) -> Result<(), Errno> {
        if group.0 as usize >= self.groups.list.len() {
            return Err(Errno::EINVAL);
        }
        let p = self.proc_mut(pid).ok_or(Errno::ESRCH)?;
        p.group = group;
        Ok(())
    }

    /// The memory groups; the root group `/` is first.
    pub fn groups(&self) -> &[MemGroup] {
        &self.groups.list
    }

    /// Bytes committed now (`Committed_AS`).
    pub fn committed(&self) -> u64 {
        self.groups.committed
    }

    /// The most that may be committed under [`Overcommit::Never`] (`CommitLimit`):
    /// swap plus `overcommit_ratio` percent of RAM.
    pub fn commit_limit(&self) -> u64 {
        self.machine.ram.size() / 100 * self.config.overcommit_ratio as u64 + self.swap_bytes()
    }

    /// Bytes of swap.
    pub fn swap_bytes(&self) -> u64 {
        self.swap
            .dev
            .as_ref()
            .map_or(0, |s| s.stats.slots * self.page_size())
    }

    /// Accounts `bytes` of new commitment, or refuses with ENOMEM.
    pub(super) fn commit(&mut self, bytes: u64) -> Result<(), Errno> {
        let ok = match self.config.overcommit {
            Overcommit::Always => true,
            Overcommit::Heuristic => bytes <= self.machine.ram.size() + self.swap_bytes(),
            Overcommit::Never => self.groups.committed + bytes <= self.commit_limit(),
        };
        if !ok {
            return Err(Errno::ENOMEM);
        }
        self.groups.committed += bytes;
        Ok(())
    }

    pub(super) fn uncommit(&mut self, bytes: u64) {
        self.groups.committed = self.groups.committed.saturating_sub(bytes);
    }

    /// A frame for `pid`'s user memory, charged to its group. Below the `low`
    /// watermark background reclaim runs first; at `min` the allocation reclaims
    /// directly; a group at its limit reclaims its own frames. Only when reclaim finds
    /// nothing, 17 passes in a row, does the OOM killer run, until there is room; if
    /// it kills `pid` itself, or finds nobody to kill, the fault fails.
    pub(super) fn alloc_user_frame(&mut self, pid: Pid, kind: FrameKind) -> Result<Pfn, Violation> {
        self.alloc_frame_charged(pid, None, kind, true)
    }

    /// The `memory.stat` of the group `pfn` is charged to.
    pub(super) fn group_of_frame(&mut self, pfn: Pfn) -> &mut GroupStat {
        self.group_stat(self.frames.group(pfn))
    }

    /// The `memory.stat` of group number `g` (the root's, for a number no group has).
    pub(super) fn group_stat(&mut self, g: u16) -> &mut GroupStat {
        let g = if (g as usize) < self.groups.list.len() {
            g as usize
        } else {
            0
        };
        &mut self.groups.list[g].stat
    }

    /// A frame for readahead, charged to `pid`'s group: as
    /// [`alloc_user_frame`](Self::alloc_user_frame), but where only the OOM killer could
    /// find one, none (readahead is a guess, not worth a process).
    pub(super) fn alloc_readahead_frame(
        &mut self,
        pid: Pid,
        kind: FrameKind,
    ) -> Result<Pfn, Violation> {
        self.alloc_frame_charged(pid, None, kind, false)
    }

    /// Makes room in `pid`'s group for a folio of `pages` pages before its pages are
    /// charged one by one, and says whether there is room now. Linux charges a folio
    /// whole: a group without room for it reclaims the folio's size (at least
    /// [`RECLAIM_BATCH`]) in one go, where charging page by page would reclaim a batch
    /// for each page, and a readahead folio's charge (`__GFP_NORETRY`) tries twice
    /// (once more after draining the per-CPU stock) and then fails: the folio is not
    /// made, however much the two passes freed.
    ///
    /// [`RECLAIM_BATCH`]: super::reclaim::RECLAIM_BATCH
    pub(super) fn make_room_for_folio(&mut self, pid: Pid, pages: u64) -> bool {
        use super::reclaim::{Scope, RECLAIM_BATCH};
        let Some(g) = self.process(pid).map(|p| p.group) else {
            return true;
        };
        let short = |k: &Kernel| {
            let grp = &k.groups.list[g.0 as usize];
            grp.max_pages.is_some_and(|m| grp.charged + pages > m)
        };
        for _ in 0..2 {
            if !short(self) {
                return true;
            }
            self.reclaim((pages as usize).max(RECLAIM_BATCH), Scope::Group(g));
        }
        !short(self)
    }

    /// [`alloc_user_frame`](Self::alloc_user_frame), charged to `group` instead of
    /// `pid`'s group when one is named (a page-cache page someone else read first);
    /// without `may_kill`, fails where it would call the OOM killer.
    pub(super) fn alloc_frame_charged(
        &mut self,
        pid: Pid,
        group: Option<GroupId>,
        kind: FrameKind,
        may_kill: bool,
    ) -> Result<Pfn, Violation> {
        use super::reclaim::{Scope, RECLAIM_BATCH, RECLAIM_RETRIES};
        self.kswapd();
        // Passes that may still free nothing before the OOM killer runs; a kill
        // starts the count again, as Linux's does after the OOM killer made progress.
        let mut retries = RECLAIM_RETRIES;
        loop {
            let own = self.process(pid).ok_or(Violation::OutOfMemory)?.group;
            let g = group.unwrap_or(own);
            let grp = &self.groups.list[g.0 as usize];
            if grp.max_pages.is_some_and(|m| grp.charged >= m) {
                // Nothing to take but pages being read: an allocation that must succeed
                // waits for them, as Linux's charge retries its reclaim while they
                // complete (readahead gives up at once).
                if self.reclaim(RECLAIM_BATCH, Scope::Group(g)) == 0
                    && (!may_kill || !self.wait_first_io())
                {
                    if !may_kill {
                        return Err(Violation::OutOfMemory);
                    }
                    if retries > 0 {
                        retries -= 1;
                        continue;
                    }
                    let grp = &self.groups.list[g.0 as usize];
                    let why = format!(
                        "group {} is at its limit of {} pages and nothing in it can be reclaimed",
                        grp.name,
                        grp.max_pages.unwrap_or(0)
                    );
                    self.oom_kill(Some(g), why)?;
                    retries = RECLAIM_RETRIES;
                }
            } else if self.frames.nr_free() <= self.reclaim.watermarks.min
                && self.direct_reclaim(pid) == 0
                && self.frames.nr_free() == 0
                && (!may_kill || !self.wait_first_io())
            {
                if !may_kill {
                    return Err(Violation::OutOfMemory);
                }
                if retries > 0 {
                    retries -= 1;
                    continue;
                }
                self.oom_kill(None, "no free frames and nothing reclaimable".into())?;
                retries = RECLAIM_RETRIES;
            } else if let Some(pfn) = self.frames.alloc(1, kind, g.0) {
                self.groups.list[g.0 as usize].charge(kind, 1);
                self.lru_add(pfn);
                return Ok(pfn);
            } else {
                if !may_kill {
                    return Err(Violation::OutOfMemory);
                }
                self.oom_kill(None, "no free frames".into())?;
                retries = RECLAIM_RETRIES;
            }
            if !self.process(pid).is_some_and(|p| p.is_running()) {
                return Err(Violation::OutOfMemory);
            }
        }
    }

    fn direct_reclaim(&mut self, pid: Pid) -> usize {
        use super::reclaim::{Scope, RECLAIM_BATCH};
        self.log.counters.direct_reclaims += 1;
        let scope = if self.config.local_reclaim {
            Scope::Process(pid)
        } else {
            Scope::Global
        };
        self.reclaim(RECLAIM_BATCH, scope)
    }

    /// Kills the running process with the most resident pages (in `group`, or
    /// anywhere). Fails when there is nobody to kill.
    pub(super) fn oom_kill(
        &mut self,
        group: Option<GroupId>,
        reason: String,
    ) -> Result<(), Violation> {
        let victim = self
            .tasks
            .procs
            .iter()
            .filter(|p| p.is_running() && group.is_none_or(|g| p.group == g))
            .max_by_key(|p| (p.rss().total(), std::cmp::Reverse(p.pid)))
            .map(|p| (p.pid, p.name.clone(), p.rss().total()));
        let Some((pid, name, rss_pages)) = victim else {
            return Err(Violation::OutOfMemory);
        };
        if let Some(g) = group {
            self.groups.list[g.0 as usize].oom_kills += 1;
        }
        self.log.counters.oom_kills += 1;
        self.log(Event::OomKill {
            pid,
            name,
            rss_pages,
            group: group.map(|g| self.groups.list[g.0 as usize].name.clone()),
            reason,
        });
        self.teardown(pid, ProcState::Killed(Signal::OomKill));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn overcommit_policies_refuse_what_they_should() {
        let mut k = boot_with("x86-64", |c| c.overcommit = Overcommit::Never);
        let pid = spawn(&mut k);
        let limit = k.commit_limit();
        assert_eq!(
            k.mmap(pid, MmapArgs::anon(limit, Prot::RW)),
            Err(Errno::ENOMEM)
        );
        // Read-only private mappings are not committed.
        assert!(k.mmap(pid, MmapArgs::anon(limit, Prot::READ)).is_ok());
        let part = (limit / 5 * 2) & !4095;
        let a = k.mmap(pid, MmapArgs::anon(part, Prot::RW)).unwrap();
        assert_eq!(k.fork(pid).map(|_| ()), Ok(()));
        assert_eq!(
            k.fork(pid),
            Err(Errno::ENOMEM),
            "a third copy would pass the limit"
        );
        k.munmap(pid, a, part).unwrap();
        assert!(k.fork(pid).is_ok());

        let (mut k, pid) = booted();
        let ram = k.machine.ram.size();
        assert_eq!(
            k.mmap(pid, MmapArgs::anon(2 * ram, Prot::RW)),
            Err(Errno::ENOMEM)
        );
        assert!(k.mmap(pid, MmapArgs::anon(ram / 2, Prot::RW)).is_ok());
        assert!(
            k.mmap(pid, MmapArgs::anon(ram / 2, Prot::RW)).is_ok(),
            "mode 0 overcommits"
        );

        let mut k = boot_with("x86-64", |c| c.overcommit = Overcommit::Always);
        let pid = spawn(&mut k);
        assert!(k.mmap(pid, MmapArgs::anon(4 * ram, Prot::RW)).is_ok());
    }

    #[test]
    fn groups_run_out_where_linuxs_memory_group_ids_do() {
        let mut k = boot("x86-64");
        // The root is group 0; numbers 1 to 65,534 can be made, 65,535 cannot.
        for i in 1..u16::MAX {
            assert_eq!(k.create_group("/g", None).unwrap(), GroupId(i));
        }
        assert_eq!(k.create_group("/one-too-many", None), Err(Errno::ENOSPC));
    }

    #[test]
    fn a_group_at_its_limit_loses_its_largest_process() {
        let mut k = boot("x86-64");
        let g = k.create_group("/jobs", Some(64 * 4096)).unwrap();
        let small = spawn(&mut k);
        let big = spawn(&mut k);
        k.set_group(small, g).unwrap();
        k.set_group(big, g).unwrap();
        let a = k.mmap(small, MmapArgs::anon(8 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, small, a, 8, |_| 1);
        let b = k.mmap(big, MmapArgs::anon(100 * 4096, Prot::RW)).unwrap();
        let mut died_at = None;
        for i in 0..100 {
            if k.write_u64(big, VirtAddr(b.0 + i * 4096), 1).is_err() {
                died_at = Some(i);
                break;
            }
        }
        assert!(died_at.is_some(), "the group limit must stop it");
        assert_eq!(
            k.process(big).unwrap().state,
            ProcState::Killed(Signal::OomKill)
        );
        assert!(k.process(small).unwrap().is_running());
        assert!(
            matches!(&k.log.events[0], Event::OomKill { pid, group: Some(n), .. } if *pid == big && n == "/jobs")
        );
        assert_eq!(k.groups()[g.0 as usize].oom_kills, 1);
        assert_eq!(k.groups()[g.0 as usize].charged, 8);
        assert!(k.groups()[g.0 as usize].peak <= 64);
    }

    #[test]
    fn a_groups_page_tables_count_against_its_limit() {
        // One page in each of 32 separate 2 MiB ranges: a page-table page each, beside
        // the page itself. Under a limit of 48 pages the tables leave room for fewer
        // than the 32 pages, so some go to swap; uncharged, all 32 would fit.
        let mut k = boot_small(64 << 20, 64 << 20, ReclaimPolicy::TwoList);
        let g = k.create_group("/tables", Some(48 * 4096)).unwrap();
        let pid = spawn(&mut k);
        k.set_group(pid, g).unwrap();
        // A new image's tables are charged to the group the process is in.
        k.exec_empty(pid).unwrap();
        let huge = 2 << 20;
        let a = k.mmap(pid, MmapArgs::anon(33 * huge, Prot::RW)).unwrap();
        let base = (a.0 + huge - 1) & !(huge - 1);
        for i in 0..32 {
            k.write_u64(pid, VirtAddr(base + i * huge), i + 1).unwrap();
        }
        let grp = &k.groups()[g.0 as usize];
        assert!(grp.stat.pagetables >= 32, "{:?}", grp.stat);
        assert_eq!(grp.charged, grp.stat.anon + grp.stat.pagetables);
        assert!(grp.charged <= 48 && grp.peak <= 49, "{grp:?}");
        assert!(k.log.counters.swap_outs > 0, "the tables took room");
        for i in 0..32 {
            assert_eq!(k.read_u64(pid, VirtAddr(base + i * huge)).unwrap(), i + 1);
        }
        // The tables go with the address space.
        k.exit(pid, 0).unwrap();
        let grp = &k.groups()[g.0 as usize];
        assert_eq!((grp.charged, grp.stat.pagetables), (0, 0), "{grp:?}");
    }

    #[test]
    fn a_group_makes_room_for_a_large_folio_in_one_reclaim() {
        // Pages alone: the file's dentry and inode would take a page of the group.
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.readahead_pages = 0;
            c.kmem = false;
        });
        let g = k.create_group("/reader", Some(128 * 4096)).unwrap();
        let pid = spawn(&mut k);
        k.set_group(pid, g).unwrap();
        let f = k.create_file("/data", vec![1; 256 * 4096]);
        // Without readahead, 128 single pages fill the group, and their reads are done.
        for i in 0..128 {
            k.read_file(pid, f, i * 4096, 4096);
        }
        assert_eq!(k.groups()[g.0 as usize].charged, 128);
        // A folio of 64 pages: the group reclaims 64 at once.
        assert!(k.make_room_for_folio(pid, 64));
        assert!(k.groups()[g.0 as usize].charged <= 64);
        // One that fits takes nothing.
        let before = k.log.counters.file_evictions;
        assert!(k.make_room_for_folio(pid, 8));
        assert_eq!(k.log.counters.file_evictions, before);
    }

    #[test]
    fn a_group_full_of_pages_being_read_waits_for_them_rather_than_killing() {
        // A reader in a group of 16 pages maps a file with readahead of 32: the window
        // around its first fault fills the group, and the next fault finds nothing to
        // reclaim but pages whose read is in flight.
        let mut k = boot_with("x86-64", |c| c.reclaim = ReclaimPolicy::TwoList);
        let g = k.create_group("/reader", Some(16 * 4096)).unwrap();
        let pid = spawn(&mut k);
        k.set_group(pid, g).unwrap();
        let f = k.create_file("/data", vec![1; 256 * 4096]);
        let args = MmapArgs {
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(256 * 4096, Prot::READ)
        };
        let va = k.mmap(pid, args).unwrap();
        let mut b = [0u8];
        for i in (0..256).step_by(37) {
            k.read(pid, VirtAddr(va.0 + i * 4096), &mut b).unwrap();
            assert_eq!(b, [1]);
        }
        assert!(k.process(pid).unwrap().is_running());
        assert_eq!(k.groups()[g.0 as usize].oom_kills, 0);
        assert!(k.groups()[g.0 as usize].peak <= 16);
    }

    #[test]
    fn without_swap_anonymous_memory_cannot_go_and_the_oom_killer_runs() {
        let mut k = boot_small(2 << 20, 0, ReclaimPolicy::Clock);
        let pid = spawn(&mut k);
        // Within the heuristic overcommit limit (RAM), beyond what RAM has free.
        let a = k.mmap(pid, MmapArgs::anon(480 * 4096, Prot::RW)).unwrap();
        let mut failed = false;
        for i in 0..480 {
            if k.write_u64(pid, VirtAddr(a.0 + i * 4096), 1).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
        assert_eq!(
            k.process(pid).unwrap().state,
            ProcState::Killed(Signal::OomKill)
        );
        assert!(
            matches!(&k.log.events[0], Event::OomKill { reason, .. } if reason.contains("no free frames")),
            "{:?}",
            k.log.events
        );
    }

    #[test]
    fn a_group_at_its_limit_swaps_its_own_pages_before_killing() {
        let mut k = boot_small(16 << 20, 16 << 20, ReclaimPolicy::Clock);
        let g = k.create_group("/limited", Some(64 * 4096)).unwrap();
        let pid = spawn(&mut k);
        k.set_group(pid, g).unwrap();
        let a = k.mmap(pid, MmapArgs::anon(256 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 256, |i| i);
        for i in 0..256 {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
        assert!(k.process(pid).unwrap().is_running());
        assert!(k.groups()[g.0 as usize].peak <= 64);
        assert!(k.log.counters.swap_outs >= 192);
        assert_eq!(k.log.counters.oom_kills, 0);
    }
}
