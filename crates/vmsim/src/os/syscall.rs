//! The syscall surface, with Linux's semantics and error values: `mmap`, `munmap`,
//! `mprotect`, `brk`, `madvise(MADV_DONTNEED)`, `fork`, `exec`, `exit`, and POSIX shared
//! memory (`shm_open`, `shm_unlink`). Errors are values; nothing panics.

use super::frames::FrameKind;
use super::process::{AddressSpace, ProcState, ProcStats, Process, Rss};
use super::vma::{Backing, Device, FileId, Prot, ShmId, Vma, VmaRole, VmaSet};
use super::{GroupId, Kernel, Pid};
use crate::addr::VirtAddr;
use crate::hw::{Flags, Slot, SoftPte, TlbFlush};
use thiserror::Error;

/// A syscall's error, as Linux names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error, serde::Serialize)]
pub enum Errno {
    /// An argument is invalid (misaligned, zero length, out of range).
    #[error("EINVAL: invalid argument")]
    EINVAL,
    /// Out of memory, address space or commit limit; or a range with holes.
    #[error("ENOMEM: cannot allocate memory")]
    ENOMEM,
    /// The policy forbids it (W^X), or the object does not allow it.
    #[error("EACCES: permission denied")]
    EACCES,
    /// Something is in the way (`MAP_FIXED_NOREPLACE`, an existing name).
    #[error("EEXIST: already exists")]
    EEXIST,
    /// A bad address in a copy to or from user memory.
    #[error("EFAULT: bad address")]
    EFAULT,
    /// No such process, or it is not running.
    #[error("ESRCH: no such process")]
    ESRCH,
    /// No such file or object.
    #[error("ENOENT: no such file or object")]
    ENOENT,
}

/// What a new mapping maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapSource {
    /// Anonymous memory (`MAP_ANONYMOUS`).
    Anon,
    /// A file from a page-aligned byte offset.
    File(FileId, u64),
    /// A shared-memory object from a page-aligned byte offset.
    Shm(ShmId, u64),
    /// A device's registers (mapped uncached).
    Device(Device),
}

/// The arguments of `mmap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapArgs {
    /// A hint, or with `fixed` the exact address.
    pub addr: Option<VirtAddr>,
    /// Bytes (rounded up to pages).
    pub len: u64,
    /// Protection.
    pub prot: Prot,
    /// `MAP_SHARED` rather than `MAP_PRIVATE`.
    pub shared: bool,
    /// `MAP_FIXED`: exactly at `addr`, replacing what is there.
    pub fixed: bool,
    /// What to map.
    pub source: MapSource,
}

impl MmapArgs {
    /// A private anonymous mapping of `len` bytes anywhere.
    pub fn anon(len: u64, prot: Prot) -> MmapArgs {
        MmapArgs {
            addr: None,
            len,
            prot,
            shared: false,
            fixed: false,
            source: MapSource::Anon,
        }
    }

    /// A shared anonymous mapping of `len` bytes anywhere.
    pub fn shared_anon(len: u64, prot: Prot) -> MmapArgs {
        MmapArgs {
            shared: true,
            ..MmapArgs::anon(len, prot)
        }
    }
}

/// A program to `exec`: the sizes of its segments. Its text and data come from a file
/// named after it (made up on first use, with deterministic contents), as an ELF's
/// segments are file mappings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Its name (`/bin/<name>` in the file system).
    pub name: String,
    /// Bytes of text (read-execute).
    pub text: u64,
    /// Bytes of initialised data (read-write, private).
    pub data: u64,
    /// Bytes of zero-initialised data after it.
    pub bss: u64,
}

impl Program {
    /// A program named `name` with small segments scaled to the page size.
    pub fn small(name: &str, page_size: u64) -> Program {
        Program {
            name: name.to_string(),
            text: 8 * page_size,
            data: 2 * page_size,
            bss: 2 * page_size,
        }
    }
}

impl Kernel {
    fn round_len(&self, len: u64) -> Result<u64, Errno> {
        let ps = self.page_size();
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        len.checked_add(ps - 1)
            .map(|l| l & !(ps - 1))
            .ok_or(Errno::ENOMEM)
    }

    fn check_range(&self, addr: VirtAddr, len: u64) -> Result<VirtAddr, Errno> {
        if !addr.is_aligned(self.page_size()) {
            return Err(Errno::EINVAL);
        }
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > self.space.task_size {
            return Err(Errno::EINVAL);
        }
        Ok(end)
    }

    fn check_wx(&self, prot: Prot) -> Result<(), Errno> {
        if self.config.wx && prot.contains(Prot::WRITE | Prot::EXEC) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    // ---- Processes ----

    /// Commits `bytes` for a new address space and makes its page table; on failure
    /// nothing stays committed.
    fn committed_table(&mut self, bytes: u64) -> Result<crate::hw::PageTable, Errno> {
        self.commit(bytes)?;
        self.new_user_table().inspect_err(|_| self.uncommit(bytes))
    }

    /// Starts a new process running `program` (as `fork` of init followed by `exec`).
    pub fn spawn(&mut self, program: &Program) -> Result<Pid, Errno> {
        let pid = Pid(self.tasks.procs.len() as u32 + 1);
        self.tasks.procs.push(Process {
            pid,
            ppid: None,
            name: program.name.clone(),
            state: ProcState::Running,
            mm: None,
            group: GroupId(0),
            stats: ProcStats::default(),
            final_rss: Rss::default(),
        });
        if let Err(e) = self.exec(pid, program) {
            if let Some(p) = self.proc_mut(pid) {
                p.state = ProcState::Exited(-1);
            }
            return Err(e);
        }
        Ok(pid)
    }

    /// Replaces `pid`'s address space with a fresh one running `program`: text and data
    /// mapped privately from the program's file, bss and heap anonymous, a stack at the
    /// top of user space that grows down.
    pub fn exec(&mut self, pid: Pid, program: &Program) -> Result<(), Errno> {
        if !self.process(pid).is_some_and(|p| p.is_running()) {
            return Err(Errno::ESRCH);
        }
        let ps = self.page_size();
        let text = self.round_len(program.text.max(1))?;
        let data = self.round_len(program.data.max(1))?;
        let bss = if program.bss == 0 {
            0
        } else {
            self.round_len(program.bss)?
        };
        let file_name = format!("/bin/{}", program.name);
        let file = match self.file_named(&file_name) {
            Some(f) if self.cache.files[f.0 as usize].len >= text + data => f,
            _ => {
                let contents = program_bytes(&program.name, text + data);
                self.create_file(&file_name, contents)
            }
        };
        let big = self.space.task_size.0 >= 1 << 32;
        let text_base = if big {
            0x40_0000
        } else {
            self.space.mmap_min.0
        };
        let stack_top = self.space.task_size;
        let (stack_init, mmap_gap) = if big {
            (32 * ps, 128 << 20)
        } else {
            (ps, self.config.stack_limit.min(self.space.task_size.0 / 8))
        };
        let stack_init = stack_init.min(self.config.stack_limit);
        let data_base = text_base + text;
        let start_brk = data_base + data + bss;
        let mmap_base = VirtAddr(stack_top.0.saturating_sub(mmap_gap + stack_init));
        if start_brk + ps > mmap_base.0 || stack_top.0 < stack_init {
            return Err(Errno::ENOMEM);
        }
        let committed = data + bss + stack_init;
        let pt = self.committed_table(committed)?;
        // The old image goes only once the new one can be built.
        self.release_mm(pid);
        let mut vmas = VmaSet::default();
        let vma = |start: u64, len: u64, prot, backing, role, accounted| Vma {
            start: VirtAddr(start),
            end: VirtAddr(start + len),
            prot,
            shared: false,
            backing,
            role,
            accounted,
        };
        vmas.insert(vma(
            text_base,
            text,
            Prot::RX,
            Backing::File { file, offset: 0 },
            VmaRole::Text,
            false,
        ));
        vmas.insert(vma(
            data_base,
            data,
            Prot::RW,
            Backing::File { file, offset: text },
            VmaRole::Data,
            true,
        ));
        if bss > 0 {
            vmas.insert(vma(
                data_base + data,
                bss,
                Prot::RW,
                Backing::Anon,
                VmaRole::Data,
                true,
            ));
        }
        vmas.insert(vma(
            stack_top.0 - stack_init,
            stack_init,
            Prot::RW,
            Backing::Anon,
            VmaRole::Stack,
            true,
        ));
        let p = self.proc_mut(pid).ok_or(Errno::ESRCH)?;
        p.name = program.name.clone();
        p.mm = Some(AddressSpace {
            vmas,
            pt,
            asid_gen: u64::MAX,
            start_brk: VirtAddr(start_brk),
            brk: VirtAddr(start_brk),
            stack_top,
            mmap_base,
            rss: Rss::default(),
            committed,
            swap_pages: 0,
        });
        self.log.counters.execs += 1;
        Ok(())
    }

    /// Forks `parent`: the child gets a copy of the address space in which private
    /// pages are shared copy-on-write (both sides lose write access until one writes)
    /// and shared pages are shared. Returns the child's id.
    pub fn fork(&mut self, parent: Pid) -> Result<Pid, Errno> {
        let (vmas, layout, committed, name, group) = {
            let p = self.process(parent).ok_or(Errno::ESRCH)?;
            let mm = p.mm.as_ref().ok_or(Errno::ESRCH)?;
            (
                mm.vmas.clone(),
                (mm.start_brk, mm.brk, mm.stack_top, mm.mmap_base),
                mm.committed,
                p.name.clone(),
                p.group,
            )
        };
        let pt = self.committed_table(committed)?;
        let child = Pid(self.tasks.procs.len() as u32 + 1);
        self.tasks.procs.push(Process {
            pid: child,
            ppid: Some(parent),
            name,
            state: ProcState::Running,
            mm: Some(AddressSpace {
                vmas: vmas.clone(),
                pt,
                asid_gen: u64::MAX,
                start_brk: layout.0,
                brk: layout.1,
                stack_top: layout.2,
                mmap_base: layout.3,
                rss: Rss::default(),
                committed,
                swap_pages: 0,
            }),
            group,
            stats: ProcStats::default(),
            final_rss: Rss::default(),
        });
        let paging = self.machine.spec.paging;
        let ppt = self.mm(parent)?.pt;
        let mut pending: Option<TlbFlush> = None;
        for vma in vmas.iter() {
            for (va, slot) in ppt.entries(&paging, &self.machine.ram, vma.start, vma.end) {
                let ok = match slot {
                    Slot::Leaf(m) => {
                        let mut flags = m.flags;
                        if !vma.shared && flags.contains(Flags::WRITE) {
                            flags = flags & !Flags::WRITE;
                            let f = ppt
                                .set_flags(&paging, &mut self.machine.ram, va, flags)
                                .map_err(|_| Errno::EFAULT)?;
                            pending = Some(match pending {
                                Some(p) => p.merge(f),
                                None => f,
                            });
                        }
                        self.frames.get(m.pfn);
                        let r = self.install(child, va, m.pfn, flags);
                        if r.is_err() {
                            self.put_frame(m.pfn);
                        }
                        r
                    }
                    s @ Slot::Soft { .. } => {
                        // A page kept by PROT_NONE (a frame reference) or swapped out
                        // (a slot reference): the child's entry names the same.
                        let soft = s.soft();
                        let kept = soft.and_then(SoftPte::prot_none_frame);
                        let slot = soft.and_then(SoftPte::swap_slot);
                        if let Some(pfn) = kept {
                            self.frames.get(pfn);
                        }
                        let written = match soft {
                            Some(soft) => pt
                                .set_soft(
                                    &paging,
                                    &mut self.machine.ram,
                                    &mut self.frames,
                                    va,
                                    soft,
                                    Flags::RWX | Flags::USER,
                                )
                                .map(Some),
                            None => Ok(None),
                        };
                        match written {
                            Ok(pte) => {
                                if let (Some(pfn), Some(pte)) = (kept, pte) {
                                    self.count_resident(child, pfn);
                                    self.rmap.add(pfn, child, va, pte);
                                }
                                if let Some(slot) = slot {
                                    if let Some(s) = self.swap.dev.as_mut() {
                                        s.get(slot);
                                    }
                                    if let Ok(mm) = self.mm_mut(child) {
                                        mm.swap_pages += 1;
                                    }
                                }
                                Ok(())
                            }
                            Err(_) => {
                                if let Some(pfn) = kept {
                                    self.put_frame(pfn);
                                }
                                Err(Errno::ENOMEM)
                            }
                        }
                    }
                };
                if let Err(e) = ok {
                    if let Some(f) = pending.take() {
                        self.flush_for(parent, f);
                    }
                    self.teardown(child, ProcState::Exited(-1));
                    return Err(e);
                }
            }
        }
        if let Some(f) = pending {
            self.flush_for(parent, f);
        }
        self.log.counters.forks += 1;
        Ok(child)
    }

    /// Ends `pid` with `code`: every page, every page table and its ASID's TLB entries
    /// go.
    pub fn exit(&mut self, pid: Pid, code: i32) -> Result<(), Errno> {
        if !self.process(pid).is_some_and(|p| p.is_running()) {
            return Err(Errno::ESRCH);
        }
        self.teardown(pid, ProcState::Exited(code));
        Ok(())
    }

    /// Frees a process's address space and marks it ended.
    pub(super) fn teardown(&mut self, pid: Pid, state: ProcState) {
        let rss = self.process(pid).map_or(Rss::default(), |p| p.rss());
        self.release_mm(pid);
        if let Some(p) = self.proc_mut(pid) {
            p.state = state;
            p.final_rss = rss;
        }
        self.log.counters.exits += 1;
    }

    /// Frees an address space: its pages, its tables, its commitment, its TLB entries.
    fn release_mm(&mut self, pid: Pid) {
        let Some(mm) = self.mm(pid).ok().cloned() else {
            return;
        };
        let objs: Vec<ShmId> = mm
            .vmas
            .iter()
            .filter_map(|v| match v.backing {
                Backing::Shm { obj, .. } => Some(obj),
                _ => None,
            })
            .collect();
        for v in mm.vmas.iter() {
            // The process still has its address space and the entries were just found
            // by a walk: zap cannot fail here.
            let zapped = self.zap(pid, v.start, v.end);
            debug_assert!(zapped.is_ok(), "exit: {zapped:?}");
        }
        if self.tasks.current == Some(pid) {
            self.switch_to_kernel();
        }
        let live = mm.asid_gen == self.tasks.asids.gen;
        if self.machine.spec.asid_tagged && live {
            self.machine.mmu.flush_asid(mm.pt.asid());
        }
        let n = self.free_user_table(mm.pt);
        self.log.counters.tables_freed += n;
        self.uncommit(mm.committed);
        if let Some(p) = self.proc_mut(pid) {
            p.mm = None;
        }
        for o in objs {
            self.shm_release_if_unused(o);
        }
    }

    // ---- Mappings ----

    /// `mmap`: maps `args.len` bytes and returns the address. Mapping allocates nothing;
    /// pages come on first touch.
    pub fn mmap(&mut self, pid: Pid, args: MmapArgs) -> Result<VirtAddr, Errno> {
        let len = self.round_len(args.len)?;
        self.check_wx(args.prot)?;
        let ps = self.page_size();
        let backing = match args.source {
            MapSource::Anon if args.shared => {
                let obj = self.new_shm(None, len)?;
                Backing::Shm { obj, offset: 0 }
            }
            MapSource::Anon => Backing::Anon,
            MapSource::File(file, offset) => {
                // Linux: a misaligned offset is EINVAL, and so (EOVERFLOW there) is a
                // range of the file that runs past the largest offset.
                if offset % ps != 0 || offset.checked_add(len).is_none() {
                    return Err(Errno::EINVAL);
                }
                let f = self.file(file).ok_or(Errno::ENOENT)?;
                if f.host.is_some() && args.shared && args.prot.contains(Prot::WRITE) {
                    // Host files are opened read-only.
                    return Err(Errno::EACCES);
                }
                Backing::File { file, offset }
            }
            MapSource::Shm(obj, offset) => {
                if offset % ps != 0 || offset.checked_add(len).is_none() {
                    return Err(Errno::EINVAL);
                }
                self.shm
                    .objects
                    .get(obj.0 as usize)
                    .and_then(|o| o.as_ref())
                    .ok_or(Errno::ENOENT)?;
                Backing::Shm { obj, offset }
            }
            MapSource::Device(d) => {
                if self.space.display.is_none() {
                    return Err(Errno::ENOENT);
                }
                Backing::Device(d)
            }
        };
        let release = |k: &mut Kernel| {
            if let (MapSource::Anon, Backing::Shm { obj, .. }) = (args.source, backing) {
                k.shm_release_if_unused(obj);
            }
        };
        let start = match self.place(pid, &args, len) {
            Ok(s) => s,
            Err(e) => {
                release(self);
                return Err(e);
            }
        };
        let accounted = !args.shared && args.prot.contains(Prot::WRITE);
        if accounted {
            if let Err(e) = self.commit(len) {
                release(self);
                return Err(e);
            }
        }
        if args.fixed {
            self.munmap(pid, start, len)?;
        }
        let mm = self.mm_mut(pid)?;
        mm.vmas.insert(Vma {
            start,
            end: VirtAddr(start.0 + len),
            prot: args.prot,
            shared: args.shared || matches!(backing, Backing::Device(_)),
            backing,
            role: VmaRole::Mmap,
            accounted,
        });
        if accounted {
            mm.committed += len;
        }
        Ok(start)
    }

    /// Where a mapping goes: the fixed address, the hint if it is free, else the highest
    /// gap below the mmap base.
    fn place(&self, pid: Pid, args: &MmapArgs, len: u64) -> Result<VirtAddr, Errno> {
        let mm = self.mm(pid)?;
        if args.fixed {
            let addr = args.addr.ok_or(Errno::EINVAL)?;
            self.check_range(addr, len)?;
            if addr < self.space.mmap_min {
                return Err(Errno::EINVAL);
            }
            return Ok(addr);
        }
        if let Some(hint) = args.addr {
            let hint = hint.align_down(self.page_size());
            if hint >= self.space.mmap_min
                && self.check_range(hint, len).is_ok()
                && !mm.vmas.overlaps(hint, VirtAddr(hint.0 + len))
            {
                return Ok(hint);
            }
        }
        mm.vmas
            .gap_below(mm.mmap_base, self.space.mmap_min.max(mm.brk), len)
            .ok_or(Errno::ENOMEM)
    }

    /// `munmap`: removes every mapping in the range (holes are fine).
    pub fn munmap(&mut self, pid: Pid, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        let len = self.round_len(len)?;
        let end = self.check_range(addr, len)?;
        self.mm(pid)?;
        self.zap(pid, addr, end)?;
        let gone = self.mm_mut(pid)?.vmas.remove_range(addr, end);
        let mut objs = Vec::new();
        for v in &gone {
            if v.accounted {
                self.uncommit(v.len());
                let mm = self.mm_mut(pid)?;
                mm.committed = mm.committed.saturating_sub(v.len());
            }
            if let Backing::Shm { obj, .. } = v.backing {
                objs.push(obj);
            }
        }
        self.free_tables_around(pid, addr, end);
        for o in objs {
            self.shm_release_if_unused(o);
        }
        Ok(())
    }

    /// The VMAs covering `[addr, end)`, or ENOMEM if there is a hole.
    fn mapped_throughout(
        &self,
        pid: Pid,
        addr: VirtAddr,
        end: VirtAddr,
    ) -> Result<Vec<Vma>, Errno> {
        let parts = self.mm(pid)?.vmas.overlapping(addr, end);
        let mut at = addr;
        for v in &parts {
            if v.start > at {
                return Err(Errno::ENOMEM);
            }
            at = v.end;
        }
        if at < end {
            return Err(Errno::ENOMEM);
        }
        Ok(parts)
    }

    /// `mprotect`: changes the protection of every page in the range, which must be
    /// mapped throughout (else ENOMEM, and nothing changes).
    pub fn mprotect(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
    ) -> Result<(), Errno> {
        let len = self.round_len(len)?;
        let end = self.check_range(addr, len)?;
        self.check_wx(prot)?;
        let parts = self.mapped_throughout(pid, addr, end)?;
        // Private mappings that become writable are committed now.
        let newly: u64 = parts
            .iter()
            .filter(|v| !v.shared && !v.accounted && prot.contains(Prot::WRITE))
            .map(|v| v.end.0.min(end.0) - v.start.0.max(addr.0))
            .sum();
        self.commit(newly)?;
        {
            let mm = self.mm_mut(pid)?;
            mm.committed += newly;
            mm.vmas.update_range(addr, end, |v| {
                if !v.shared && prot.contains(Prot::WRITE) {
                    v.accounted = true;
                }
                v.prot = prot;
            });
        }
        self.reprotect(pid, addr, end)
    }

    /// Rewrites the entries of `[start, end)` to match their VMAs' protection.
    fn reprotect(&mut self, pid: Pid, start: VirtAddr, end: VirtAddr) -> Result<(), Errno> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let mut pending: Option<TlbFlush> = None;
        for (va, slot) in pt.entries(&paging, &self.machine.ram, start, end) {
            let vma = *self.mm(pid)?.vmas.find(va).ok_or(Errno::EFAULT)?;
            let (pfn, old) = match slot {
                Slot::Leaf(m) => (m.pfn, Some(m.flags)),
                s @ Slot::Soft { .. } => match s.soft().and_then(SoftPte::prot_none_frame) {
                    Some(pfn) => (pfn, None),
                    // Swapped out: the protection applies when it comes back.
                    None => continue,
                },
            };
            if vma.prot == Prot::NONE {
                if old.is_some() {
                    let (_, f) = pt
                        .unmap(&paging, &mut self.machine.ram, va)
                        .map_err(|_| Errno::EFAULT)?;
                    pending = Some(match pending {
                        Some(p) => p.merge(f),
                        None => f,
                    });
                    pt.set_prot_none(
                        &paging,
                        &mut self.machine.ram,
                        &mut self.frames,
                        va,
                        pfn,
                        Flags::RWX | Flags::USER,
                    )
                    .map_err(|_| Errno::ENOMEM)?;
                }
                continue;
            }
            // Writable only where no copy-on-write is pending.
            let sole = pfn != self.space.zero_pfn
                && (vma.shared
                    || (self.frames.kind(pfn) == FrameKind::Anon && self.frames.refs(pfn) == 1));
            let device = matches!(vma.backing, Backing::Device(_));
            let mut flags = self.user_flags(vma.prot, sole, device);
            match old {
                Some(o) => {
                    flags = flags | (o & (Flags::ACCESSED | Flags::DIRTY));
                    if flags != o {
                        let f = pt
                            .set_flags(&paging, &mut self.machine.ram, va, flags)
                            .map_err(|_| Errno::EFAULT)?;
                        pending = Some(match pending {
                            Some(p) => p.merge(f),
                            None => f,
                        });
                    }
                }
                None => {
                    pt.clear_soft(&paging, &mut self.machine.ram, va)
                        .map_err(|_| Errno::EFAULT)?;
                    self.uncount(pid, pfn);
                    self.rmap.remove(pfn, pid, va);
                    self.install(pid, va, pfn, flags)?;
                }
            }
        }
        if let Some(f) = pending {
            self.flush_for(pid, f);
        }
        Ok(())
    }

    /// `brk`: moves the program break to `new` (or reports it, with `None`). Fails with
    /// ENOMEM where the heap would run into another mapping or past the commit limit.
    pub fn brk(&mut self, pid: Pid, new: Option<VirtAddr>) -> Result<VirtAddr, Errno> {
        let ps = self.page_size();
        let (start_brk, old) = {
            let mm = self.mm(pid)?;
            (mm.start_brk, mm.brk)
        };
        let Some(new) = new else { return Ok(old) };
        if new < start_brk {
            return Err(Errno::ENOMEM);
        }
        let old_end = old.align_up(ps).ok_or(Errno::ENOMEM)?;
        let new_end = new.align_up(ps).ok_or(Errno::ENOMEM)?;
        if new_end > old_end {
            if new_end > self.mm(pid)?.mmap_base || self.mm(pid)?.vmas.overlaps(old_end, new_end) {
                return Err(Errno::ENOMEM);
            }
            let grow = new_end.0 - old_end.0;
            self.commit(grow)?;
            let mm = self.mm_mut(pid)?;
            mm.committed += grow;
            mm.vmas.insert(Vma {
                start: old_end,
                end: new_end,
                prot: Prot::RW,
                shared: false,
                backing: Backing::Anon,
                role: VmaRole::Heap,
                accounted: true,
            });
        } else if new_end < old_end {
            self.munmap(pid, new_end, old_end.0 - new_end.0)?;
        }
        self.mm_mut(pid)?.brk = new;
        Ok(new)
    }

    /// `madvise(MADV_DONTNEED)`: drops the pages of the range (the next touch finds
    /// zeros for private anonymous memory, the object's contents otherwise). The range
    /// must be mapped throughout.
    pub fn madvise_dontneed(&mut self, pid: Pid, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        let len = self.round_len(len)?;
        let end = self.check_range(addr, len)?;
        self.mapped_throughout(pid, addr, end)?;
        self.zap(pid, addr, end)
    }
}

/// Deterministic contents for a program's file: a byte pattern seeded by its name.
fn program_bytes(name: &str, len: u64) -> Vec<u8> {
    let mut s = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::MachineSpec;
    use crate::os::KernelConfig;

    #[test]
    fn a_file_mapping_needs_an_aligned_offset_within_the_file_space() {
        let mut k = Kernel::boot(
            MachineSpec::preset("x86-64").unwrap(),
            KernelConfig::default(),
        );
        let pid = k.spawn(&Program::small("t", 4096)).unwrap();
        let file = k.create_file("f", vec![7; 64 << 10]);
        let at = |offset: u64, len: u64| MmapArgs {
            source: MapSource::File(file, offset),
            ..MmapArgs::anon(len, Prot::READ)
        };
        assert!(k.mmap(pid, at(0x2000, 0x2000)).is_ok());
        for offset in [0x10, 0x1001, 4095] {
            assert_eq!(
                k.mmap(pid, at(offset, 0x2000)),
                Err(Errno::EINVAL),
                "{offset:#x}"
            );
        }
        // Aligned, but the range would end past 2^64 bytes.
        assert_eq!(
            k.mmap(pid, at(u64::MAX - 0xfff, 0x2000)),
            Err(Errno::EINVAL)
        );
        let shm = k.shm_open("s", 8192).unwrap();
        let shm_at = |offset: u64| MmapArgs {
            shared: true,
            source: MapSource::Shm(shm, offset),
            ..MmapArgs::anon(0x1000, Prot::READ)
        };
        assert_eq!(k.mmap(pid, shm_at(0x800)), Err(Errno::EINVAL));
        assert_eq!(k.mmap(pid, shm_at(u64::MAX - 0xfff)), Err(Errno::EINVAL));
        assert!(k.mmap(pid, shm_at(0x1000)).is_ok());
    }
}
