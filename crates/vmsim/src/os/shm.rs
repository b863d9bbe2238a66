//! Shared memory: POSIX objects (`shm_open`, `shm_unlink`) and the objects behind shared
//! anonymous mappings and System V segments. An object keeps its pages while it is
//! named or mapped; its size is committed when it is made.
//!
//! Its pages are swap-backed, as Linux's shmem is: they sit on the anonymous reclaim
//! lists, and reclaim writes one to a swap slot the object then holds in the page's
//! place (every mapping of it is unmapped, as for a file page), so `pswpout` counts
//! it. A fault on a page in swap reads it back (a major fault, counted in `pswpin`)
//! with the slots around it read ahead into the swap cache (Linux's
//! `shmem_swapin_cluster` uses the cluster readahead whatever the machine's choice),
//! and frees the slot, as `shmem_swapin_folio` does; a fault that finds its page in
//! the swap cache (read ahead) is minor.

use super::frames::FrameKind;
use super::{Backing, Errno, FaultKind, FileId, Kernel, Pid, ShmId, Violation};
use crate::addr::{Pfn, SwapSlot, VirtAddr};
use std::collections::BTreeMap;

/// A shared-memory object.
#[derive(Clone, Debug)]
pub struct ShmObject {
    /// Its name (`None` for the object behind a shared anonymous mapping).
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Its resident pages, by page index.
    pub pages: BTreeMap<u64, Pfn>,
    /// Its pages in swap, by page index.
    pub swapped: BTreeMap<u64, SwapSlot>,
    /// The tmpfs file whose pages it holds (see [`Kernel::make_tmpfs_file`]): it lives
    /// as long as the file, named or mapped or not, and nothing was committed for it.
    pub file: Option<super::FileId>,
    /// For a tmpfs file: the processes that hold it (used it, or were forked from
    /// one that did), until each exits or says it holds it no more.
    pub holders: Vec<Pid>,
    /// For a tmpfs file: its name is gone (unlinked, or a memfd, which has none) and
    /// a process let it go: its pages go once no process holds or maps it.
    pub dropped: bool,
}

/// Every shared-memory object, by [`ShmId`], and the names of the named ones.
#[derive(Debug, Default)]
pub(super) struct SharedMemory {
    /// The objects; a freed one leaves a hole its id is reused from.
    pub(super) objects: Vec<Option<ShmObject>>,
    /// The named objects.
    pub(super) names: BTreeMap<String, ShmId>,
    /// The object and page index of each resident page, by frame number.
    pub(super) owner: rustc_hash::FxHashMap<u64, (ShmId, u64)>,
}

impl SharedMemory {
    /// Stores `obj` in the first free place and returns its id.
    fn insert(&mut self, obj: ShmObject) -> ShmId {
        let named = obj.name.clone();
        let id = match self.objects.iter().position(|o| o.is_none()) {
            Some(i) => {
                self.objects[i] = Some(obj);
                ShmId(i as u32)
            }
            None => {
                self.objects.push(Some(obj));
                ShmId(self.objects.len() as u32 - 1)
            }
        };
        if let Some(n) = named {
            self.names.insert(n, id);
        }
        id
    }
}

impl Kernel {
    /// A new object of `size` bytes, committed first.
    pub(super) fn new_shm(&mut self, name: Option<&str>, size: u64) -> Result<ShmId, Errno> {
        self.commit(size)?;
        Ok(self.shm.insert(ShmObject {
            name: name.map(str::to_string),
            size,
            pages: Default::default(),
            swapped: Default::default(),
            file: None,
            holders: Vec::new(),
            dropped: false,
        }))
    }

    /// Records that page `idx` of object `obj` is in frame `pfn` now.
    pub(super) fn shm_add_page(&mut self, obj: ShmId, idx: u64, pfn: Pfn) {
        if let Some(o) = self.shm.objects[obj.0 as usize].as_mut() {
            o.pages.insert(idx, pfn);
            self.shm.owner.insert(pfn.0, (obj, idx));
        }
    }

    /// Makes `file` a file on tmpfs (`/dev/shm`, `shm_open`, `memfd_create`), as a
    /// trace's `file-shmem` event says, before the file is used: its pages are then a
    /// shared-memory object's, swap-backed, as Linux's shmem keeps a tmpfs file's.
    /// Mappings of it map the object; `read` and `write` use the object's pages
    /// ([`read_file`](Self::read_file), [`write_file`](Self::write_file)); a page never
    /// written is a hole, which a read finds as zeros without a page being made and a
    /// fault fills with a new zeroed page (minor); nothing is read from storage and
    /// nothing read ahead, and reclaim swaps its pages rather than writing them back.
    /// The pages recorded as cached at start are resident ones. Returns the object;
    /// `EINVAL` for a file with contents of its own (a simulated or host file) and
    /// `EBUSY` for one already in the page cache or mapped.
    pub fn make_tmpfs_file(&mut self, file: FileId) -> Result<ShmId, Errno> {
        let f = self.cache.files.get(file.0 as usize).ok_or(Errno::ENOENT)?;
        if let Some(obj) = f.shmem {
            return Ok(obj);
        }
        if f.host.is_some() || !f.data.is_empty() {
            return Err(Errno::EINVAL);
        }
        let size = f.len;
        let cached = self
            .cache
            .pages
            .range((file, 0)..=(file, u64::MAX))
            .next()
            .is_some();
        let mapped =
            self.any_vma_backed(|b| matches!(b, Backing::File { file: f, .. } if f == file));
        if cached || mapped {
            return Err(Errno::EBUSY);
        }
        // No commit: a tmpfs file's pages are accounted as they are made.
        let obj = self.shm.insert(ShmObject {
            name: None,
            size,
            pages: Default::default(),
            swapped: Default::default(),
            file: Some(file),
            holders: Vec::new(),
            dropped: false,
        });
        self.cache.files[file.0 as usize].shmem = Some(obj);
        Ok(obj)
    }

    /// Whether any process maps something whose backing `is` accepts.
    fn any_vma_backed(&self, is: impl Fn(Backing) -> bool) -> bool {
        self.tasks
            .procs
            .iter()
            .filter_map(|p| p.mm.as_ref())
            .any(|mm| mm.vmas.iter().any(|v| is(v.backing)))
    }

    /// `pid` uses tmpfs object `obj` (maps, reads or writes it): it holds it.
    pub(super) fn tmpfs_hold(&mut self, pid: Pid, obj: ShmId) {
        if let Some(o) = self.shm.objects[obj.0 as usize].as_mut() {
            if o.file.is_some() && !o.holders.contains(&pid) {
                o.holders.push(pid);
            }
        }
    }

    /// A fork: `child` holds every tmpfs file `parent` holds (the descriptors are
    /// inherited).
    pub(super) fn tmpfs_fork(&mut self, parent: Pid, child: Pid) {
        for o in self.shm.objects.iter_mut().flatten() {
            if o.holders.contains(&parent) {
                o.holders.push(child);
            }
        }
    }

    /// `pid` ended: it holds no tmpfs file any more, and a dropped file that nobody
    /// holds or maps goes.
    pub(super) fn tmpfs_exit(&mut self, pid: Pid) {
        let mut gone = Vec::new();
        for (i, o) in self.shm.objects.iter_mut().enumerate() {
            if let Some(o) = o.as_mut().filter(|o| o.holders.contains(&pid)) {
                o.holders.retain(|&p| p != pid);
                gone.push(ShmId(i as u32));
            }
        }
        for obj in gone {
            self.shm_release_if_unused(obj);
        }
    }

    /// `pid` let tmpfs file `file` go, as a trace's `file-drop` event says: it has no
    /// descriptor or mapping of it, and the file has no name. The file's pages and
    /// swap slots are freed once no process holds or maps it, as Linux frees a tmpfs
    /// inode with its last reference; it is then empty (a later use starts it again).
    /// `EINVAL` for a file not on tmpfs.
    pub fn drop_tmpfs_file(&mut self, pid: Pid, file: FileId) -> Result<(), Errno> {
        let obj = self
            .cache
            .files
            .get(file.0 as usize)
            .and_then(|f| f.shmem)
            .ok_or(Errno::EINVAL)?;
        if let Some(o) = self.shm.objects[obj.0 as usize].as_mut() {
            o.holders.retain(|&p| p != pid);
            o.dropped = true;
        }
        self.shm_release_if_unused(obj);
        Ok(())
    }

    /// The frame holding page `idx` of object `obj`, if resident (not in swap): a page
    /// of a tmpfs file recorded as cached at start is made now, charged to `pid`'s
    /// group (`None` if no memory could be found for it).
    pub(super) fn shm_page(&mut self, pid: Pid, obj: ShmId, idx: u64) -> Option<Pfn> {
        let o = self.shm.objects.get(obj.0 as usize)?.as_ref()?;
        if let Some(&pfn) = o.pages.get(&idx) {
            return Some(pfn);
        }
        let file = o.file?;
        let runs = self.cache.files[file.0 as usize].cached_at_start.as_ref()?;
        if !runs.contains(idx) || o.swapped.contains_key(&idx) {
            return None;
        }
        let pfn = self.new_shm_page(pid, obj, idx).ok()?;
        if let Some(runs) = &mut self.cache.files[file.0 as usize].cached_at_start {
            runs.remove(idx);
        }
        Some(pfn)
    }

    /// A new zeroed page `idx` of object `obj`, charged to `pid`'s group.
    fn new_shm_page(&mut self, pid: Pid, obj: ShmId, idx: u64) -> Result<Pfn, Violation> {
        let pfn = self.alloc_user_frame(pid, FrameKind::Shm)?;
        // While memory was found the OOM killer may have ended the object's last
        // mapper, and the object with it.
        if self.shm.objects[obj.0 as usize].is_none() {
            self.put_frame(pfn);
            return Err(Violation::OutOfMemory);
        }
        self.zero_frame(pfn);
        self.shm_add_page(obj, idx, pfn);
        Ok(pfn)
    }

    /// Page `idx` of object `obj` for `pid` (Linux's `shmem_get_folio`): resident
    /// ([`FaultKind::Shared`]), read back from swap ([`shm_swap_in`](Self::shm_swap_in)),
    /// or, for a hole, a new zeroed page ([`FaultKind::DemandZero`]) if `create`, else
    /// `None`.
    pub(super) fn shm_get(
        &mut self,
        pid: Pid,
        obj: ShmId,
        idx: u64,
        create: bool,
    ) -> Result<Option<(Pfn, FaultKind)>, Violation> {
        if let Some(pfn) = self.shm_page(pid, obj, idx) {
            return Ok(Some((pfn, FaultKind::Shared)));
        }
        let o = self.shm.objects[obj.0 as usize]
            .as_ref()
            .ok_or(Violation::BeyondEnd)?;
        if let Some(&slot) = o.swapped.get(&idx) {
            return self.shm_swap_in(pid, obj, idx, slot).map(Some);
        }
        if !create {
            return Ok(None);
        }
        let pfn = self.new_shm_page(pid, obj, idx)?;
        Ok(Some((pfn, FaultKind::DemandZero)))
    }

    /// The pages `offset..offset + len` (bytes) of object `obj` cover, within its size.
    fn shm_span(&self, obj: ShmId, offset: u64, len: u64) -> std::ops::Range<u64> {
        let ps = self.page_size();
        let size = self.shm.objects[obj.0 as usize]
            .as_ref()
            .map_or(0, |o| o.size);
        let end = offset.saturating_add(len).min(size);
        if end <= offset {
            return 0..0;
        }
        offset / ps..end.div_ceil(ps)
    }

    /// `read` of `len` bytes of a tmpfs file, whose pages object `obj` holds, from
    /// byte `offset` by `pid`, as Linux's `shmem_file_read_iter` does it: a page in
    /// swap is read back first (`pswpin`, the cluster around it read ahead; no fault
    /// is taken), a resident page is marked accessed if the read covers its start,
    /// and a hole reads as zeros without a page being made.
    pub(super) fn shm_read(&mut self, pid: Pid, obj: ShmId, offset: u64, len: u64) {
        let ps = self.page_size();
        for idx in self.shm_span(obj, offset, len) {
            match self.shm_get(pid, obj, idx, false) {
                Ok(Some((pfn, _))) if idx * ps >= offset => self.mark_accessed(pfn),
                Ok(_) => {}
                // No memory: the read stops short, as a read can.
                Err(_) => break,
            }
        }
    }

    /// `write` of `len` bytes of a tmpfs file, whose pages object `obj` holds, at byte
    /// `offset` by `pid` (the file has grown to the write's end), as Linux's
    /// `shmem_write_begin` does it: each page is found, read back from swap, or made
    /// for a hole, and marked accessed; its bytes are taken to be other than zeros.
    /// Nothing is written back later: the pages are the file. Returns the pages
    /// written (fewer when memory runs out: the write stops short).
    pub(super) fn shm_write(&mut self, pid: Pid, obj: ShmId, offset: u64, len: u64) -> u64 {
        let mut written = 0;
        for idx in self.shm_span(obj, offset, len) {
            let Ok(Some((pfn, _))) = self.shm_get(pid, obj, idx, true) else {
                break;
            };
            self.mark_accessed(pfn);
            self.frames.set_nonzero(pfn, true);
            written += 1;
        }
        self.log.counters.file_writes += written;
        written
    }

    /// Reclaim's eviction of the shared-memory frame `pfn`: its bytes go to a fresh
    /// swap slot, which the object holds in its place, and every mapping of it is
    /// unmapped. While reclaim collects its writes, the page stays in the swap cache
    /// (as anonymous memory) until its write is done, as Linux's `shmem_writeout`
    /// leaves it ([`Evicted::Writing`]): a fault meanwhile finds it there, minor, and
    /// reclaim frees it afterwards like any swap-cache page. Else it goes now
    /// ([`Evicted::Swap`]). `None` if it cannot go (no free slot, the device failed,
    /// or no object owns it).
    ///
    /// [`Evicted::Writing`]: super::reclaim::Evicted::Writing
    /// [`Evicted::Swap`]: super::reclaim::Evicted::Swap
    pub(super) fn shm_swap_out(&mut self, pfn: Pfn) -> Option<super::reclaim::Evicted> {
        let &(obj, idx) = self.shm.owner.get(&pfn.0)?;
        let slot = self.swap.dev.as_mut()?.alloc()?;
        let group = self.frames.group(pfn);
        let written = self.write_swap_page(pfn, slot, group, true)?;
        if let Some(s) = self.swap.dev.as_mut() {
            // The object's reference.
            s.get(slot);
        }
        self.unmap_everywhere(pfn);
        self.shm.owner.remove(&pfn.0);
        if let Some(o) = self.shm.objects[obj.0 as usize].as_mut() {
            o.pages.remove(&idx);
            o.swapped.insert(idx, slot);
        }
        if written && self.collecting_writes() {
            // The swap cache takes the object's reference to the frame, and its
            // charge moves to anonymous memory with it.
            if let Some(s) = self.swap.dev.as_mut() {
                s.cache(slot, pfn);
            }
            let stat = self.group_of_frame(pfn);
            stat.shmem = stat.shmem.saturating_sub(1);
            stat.anon += 1;
            self.frames.retype(pfn, FrameKind::Anon);
            self.queue_write(pfn, slot);
            return Some(super::reclaim::Evicted::Writing);
        }
        // The object's reference to the frame.
        self.put_frame(pfn);
        Some(super::reclaim::Evicted::Swap(slot))
    }

    /// Brings page `idx` of object `obj` back from `slot` for `pid`: from the swap
    /// cache if a readahead put it there ([`FaultKind::SwapCache`], minor), else read
    /// into a new frame charged to `pid`'s group with the cluster around it read ahead
    /// ([`FaultKind::SwapIn`], major). The slot is freed; returns the frame.
    ///
    /// [`FaultKind::SwapCache`]: super::FaultKind::SwapCache
    /// [`FaultKind::SwapIn`]: super::FaultKind::SwapIn
    pub(super) fn shm_swap_in(
        &mut self,
        pid: Pid,
        obj: ShmId,
        idx: u64,
        slot: SwapSlot,
    ) -> Result<(Pfn, super::FaultKind), super::Violation> {
        let cached = self.swap.dev.as_ref().and_then(|s| s.cached(slot));
        // For a read from swap: `swap_zero_ins` before it, whether it read bytes, its
        // readahead window, and whether its plug holds reclaim's swap writes.
        let (pfn, kind, read) = match cached {
            Some(pfn) => {
                self.swap_cache_hit(pfn, None);
                // A page whose write reclaim started is waited for
                // (`folio_wait_writeback`), then leaves the swap cache.
                self.wait_write(pfn);
                self.forget_write(pfn);
                // Read ahead and still in flight: it waits for that too.
                self.wait_read(pfn);
                if self.frames.kind(pfn) != FrameKind::Shm {
                    // Read ahead as anonymous memory: its charge moves with it.
                    let stat = self.group_of_frame(pfn);
                    stat.anon = stat.anon.saturating_sub(1);
                    stat.shmem += 1;
                    self.frames.retype(pfn, FrameKind::Shm);
                }
                (pfn, super::FaultKind::SwapCache, None)
            }
            None => {
                // One plug for the window, as in `swap_in`: reclaim's swap writes
                // while its frames are found are held until it is read.
                let win = self.cluster_window(slot);
                let plugged = win > 1 && self.plug_writes();
                let pfn = match self.alloc_user_frame(pid, FrameKind::Shm) {
                    Ok(pfn) => pfn,
                    Err(e) => {
                        self.end_writes(plugged);
                        return Err(e);
                    }
                };
                // While memory was found the OOM killer may have ended the object's
                // last mapper, and the object with it.
                let still = self.shm.objects[obj.0 as usize]
                    .as_ref()
                    .and_then(|o| o.swapped.get(&idx))
                    == Some(&slot);
                if !still {
                    self.put_frame(pfn);
                    self.end_writes(plugged);
                    return Err(super::Violation::OutOfMemory);
                }
                let zeros = self.log.counters.swap_zero_ins;
                let own_read = self.read_into_cache(slot, pfn);
                (
                    pfn,
                    super::FaultKind::SwapIn,
                    Some((zeros, own_read, win, plugged)),
                )
            }
        };
        // The swap cache's reference to the frame becomes the object's, and the slot
        // goes.
        if let Some(s) = self.swap.dev.as_mut() {
            s.uncache(slot);
            s.put(slot);
        }
        if let Some(o) = self.shm.objects[obj.0 as usize].as_mut() {
            o.swapped.remove(&idx);
        }
        self.shm_add_page(obj, idx, pfn);
        if let Some((zeros, own_read, win, plugged)) = read {
            // Finding frames for the window may reclaim: not this page.
            self.reclaim.pinned.push(pfn);
            let ahead = self.cluster_readahead(pid, slot, win);
            self.reclaim.pinned.pop();
            self.end_writes(plugged);
            self.read_swap_window(1 + ahead, zeros, own_read);
        }
        Ok((pfn, kind))
    }

    /// `shm_open` + `ftruncate`: opens the named object, creating it with `size` bytes if
    /// it does not exist (an existing one grows to `size` if smaller).
    pub fn shm_open(&mut self, name: &str, size: u64) -> Result<ShmId, Errno> {
        if let Some(&id) = self.shm.names.get(name) {
            let old = self.shm.objects[id.0 as usize]
                .as_ref()
                .map_or(0, |o| o.size);
            if size > old {
                self.commit(size - old)?;
                if let Some(o) = self.shm.objects[id.0 as usize].as_mut() {
                    o.size = size;
                }
            }
            return Ok(id);
        }
        if size == 0 {
            return Err(Errno::EINVAL);
        }
        self.new_shm(Some(name), size)
    }

    /// `shm_unlink`: removes the name; the object lives on while it is mapped.
    pub fn shm_unlink(&mut self, name: &str) -> Result<(), Errno> {
        let id = self.shm.names.remove(name).ok_or(Errno::ENOENT)?;
        self.shm_release_if_unused(id);
        Ok(())
    }

    /// `shmdt`: detaches the shared-memory attachment that starts at `addr` — the VMA
    /// there, mapping an object from its start, and the VMAs right after it that map
    /// the same object on from where it ends (an attachment `mprotect` split) — as
    /// `munmap` would. `EINVAL` if no attachment starts at `addr`.
    pub fn shm_detach(&mut self, pid: Pid, addr: VirtAddr) -> Result<(), Errno> {
        // Other CPUs hear of the call's flushes once, at its end (mmu_gather).
        self.gathered(|k| {
            let vmas = &k.mm(pid)?.vmas;
            let first = match vmas.find(addr) {
                Some(v) if v.start == addr => *v,
                _ => return Err(Errno::EINVAL),
            };
            let Backing::Shm { obj, offset: 0 } = first.backing else {
                return Err(Errno::EINVAL);
            };
            let mut end = first.end;
            while let Some(v) = vmas.find(end) {
                match v.backing {
                    Backing::Shm { obj: o, offset } if o == obj && offset == end.0 - addr.0 => {
                        end = v.end;
                    }
                    _ => break,
                }
            }
            k.munmap(pid, addr, end.0 - addr.0)
        })
    }

    /// Frees an object nobody names or maps.
    pub(super) fn shm_release_if_unused(&mut self, id: ShmId) {
        // A tmpfs file lives while it has a name or a holder.
        let file = self.shm.objects[id.0 as usize]
            .as_ref()
            .is_some_and(|o| o.file.is_some() && (!o.dropped || !o.holders.is_empty()));
        let named = file || self.shm.names.values().any(|&v| v == id);
        let mapped = self.any_vma_backed(|b| matches!(b, Backing::Shm { obj, .. } if obj == id));
        if named || mapped {
            return;
        }
        if let Some(o) = self.shm.objects[id.0 as usize]
            .as_mut()
            .filter(|o| o.file.is_some())
        {
            // A tmpfs file's contents go; the file stays, empty, as its object.
            let pages = std::mem::take(&mut o.pages);
            let swapped = std::mem::take(&mut o.swapped);
            o.dropped = false;
            if let Some(f) = o.file {
                self.cache.files[f.0 as usize].cached_at_start = None;
            }
            self.free_shm_contents(pages, swapped);
            return;
        }
        if let Some(obj) = self
            .shm
            .objects
            .get_mut(id.0 as usize)
            .and_then(|o| o.take())
        {
            self.uncommit(obj.size);
            self.free_shm_contents(obj.pages, obj.swapped);
        }
    }

    /// Frees an object's resident pages and swap slots.
    fn free_shm_contents(&mut self, pages: BTreeMap<u64, Pfn>, swapped: BTreeMap<u64, SwapSlot>) {
        for pfn in pages.values() {
            self.shm.owner.remove(&pfn.0);
            self.put_frame(*pfn);
        }
        for &slot in swapped.values() {
            self.put_swap_slot(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::*;

    fn obj(name: Option<&str>) -> ShmObject {
        ShmObject {
            name: name.map(str::to_string),
            size: 4096,
            pages: BTreeMap::new(),
            swapped: BTreeMap::new(),
            file: None,
            holders: Vec::new(),
            dropped: false,
        }
    }

    #[test]
    fn a_freed_id_is_reused_and_names_find_their_object() {
        let mut s = SharedMemory::default();
        let a = s.insert(obj(Some("a")));
        let b = s.insert(obj(None));
        assert_ne!(a, b);
        assert_eq!(s.names.get("a"), Some(&a));
        assert_eq!(s.names.len(), 1);
        s.objects[a.0 as usize] = None;
        assert_eq!(s.insert(obj(Some("c"))), a);
        assert_eq!(s.names.get("c"), Some(&a));
    }

    #[test]
    fn shared_memory_is_the_same_frames_in_every_mapper() {
        let mut k = boot("x86-64");
        let a = spawn(&mut k);
        let b = spawn(&mut k);
        let obj = k.shm_open("/cache", 8192).unwrap();
        let src = MmapArgs {
            shared: true,
            source: MapSource::Shm(obj, 0),
            ..MmapArgs::anon(8192, Prot::RW)
        };
        let va = k.mmap(a, src).unwrap();
        let vb = k.mmap(b, src).unwrap();
        k.write(a, VirtAddr(va.0 + 100), b"hello").unwrap();
        let mut buf = [0u8; 5];
        k.read(b, VirtAddr(vb.0 + 100), &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(faults(&k, FaultKind::Shared), 1);
        // Shared anonymous memory stays shared across fork; private memory does not.
        let s = k.mmap(a, MmapArgs::shared_anon(4096, Prot::RW)).unwrap();
        let p = k.mmap(a, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write_u64(a, s, 1).unwrap();
        k.write_u64(a, p, 1).unwrap();
        let c = k.fork(a).unwrap();
        k.write_u64(c, s, 2).unwrap();
        k.write_u64(c, p, 2).unwrap();
        assert_eq!(k.read_u64(a, s).unwrap(), 2);
        assert_eq!(k.read_u64(a, p).unwrap(), 1);
        // Beyond the object's end: SIGBUS.
        let big = MmapArgs {
            len: 4 * 4096,
            ..src
        };
        let vbig = k.mmap(b, big).unwrap();
        let e = k
            .access(b, VirtAddr(vbig.0 + 3 * 4096), AccessKind::Read)
            .unwrap_err();
        assert!(matches!(
            e,
            AccessError::Signal {
                signal: Signal::Bus,
                ..
            }
        ));
    }

    #[test]
    fn a_read_fault_maps_the_resident_pages_around_it() {
        let mut k = boot("x86-64");
        let a = spawn(&mut k);
        let n = 64u64;
        // Aligned to the 16-page windows.
        let at = MmapArgs {
            addr: Some(VirtAddr(0x4000_0000)),
            fixed: true,
            ..MmapArgs::shared_anon(n * 4096, Prot::RW)
        };
        let s = k.mmap(a, at).unwrap();
        // The first half is resident; the second is holes.
        for i in 0..n / 2 {
            k.write_u64(a, VirtAddr(s.0 + i * 4096), i).unwrap();
        }
        let child = k.fork(a).unwrap();
        let (shared, zero) = (
            faults(&k, FaultKind::Shared),
            faults(&k, FaultKind::DemandZero),
        );
        let around = k.log.counters.fault_around_pages;
        for i in 0..n {
            let got = k.read_u64(child, VirtAddr(s.0 + i * 4096)).unwrap();
            assert_eq!(got, if i < n / 2 { i } else { 0 });
        }
        // One fault per 16-page window of resident pages; one per hole.
        assert_eq!(faults(&k, FaultKind::Shared) - shared, 2);
        assert_eq!(faults(&k, FaultKind::DemandZero) - zero, n / 2);
        assert_eq!(k.log.counters.fault_around_pages - around, n / 2 - 2);
    }

    #[test]
    fn shared_pages_go_to_swap_and_come_back_under_pressure() {
        for policy in [ReclaimPolicy::Clock, ReclaimPolicy::TwoList] {
            let mut k = boot_small(2 << 20, 8 << 20, policy);
            let a = spawn(&mut k);
            // 4 MiB of shared memory on 2 MiB of RAM, shared with a child.
            let n = 1024u64;
            let s = k
                .mmap(a, MmapArgs::shared_anon(n * 4096, Prot::RW))
                .unwrap();
            let child = k.fork(a).unwrap();
            for i in 0..n {
                k.write_u64(a, VirtAddr(s.0 + i * 4096), i * 3 + 1).unwrap();
            }
            let outs = k.log.counters.swap_outs;
            assert!(outs > n / 2, "{policy:?}: {outs}");
            for i in 0..n {
                let got = k.read_u64(child, VirtAddr(s.0 + i * 4096)).unwrap();
                assert_eq!(got, i * 3 + 1, "{policy:?} page {i}");
            }
            assert!(faults(&k, FaultKind::SwapIn) > 0, "{policy:?}");
            assert_eq!(faults(&k, FaultKind::SwapIn), k.log.counters.swap_ins);
            // Read back in the order they went out: most come from the readahead.
            let hits = k.log.counters.swap_readahead_hits;
            assert!(hits > faults(&k, FaultKind::SwapIn), "{policy:?}: {hits}");
            // The others found theirs still in the swap cache after its write.
            assert!(faults(&k, FaultKind::SwapCache) >= hits, "{policy:?}");
            assert!(k.process(a).unwrap().is_running());
            // The object goes with its last mapper, and its slots with it.
            k.exit(a, 0).unwrap();
            k.exit(child, 0).unwrap();
            let used = k.swap.dev.as_ref().unwrap().stats.used;
            assert_eq!(used, 0, "{policy:?}");
            assert!(k.shm.owner.is_empty());
        }
    }

    #[test]
    fn a_shared_page_kept_by_prot_none_leaves_cleanly_and_comes_back() {
        let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::Clock);
        let pid = spawn(&mut k);
        let s = k.mmap(pid, MmapArgs::shared_anon(4096, Prot::RW)).unwrap();
        k.write_u64(pid, s, 42).unwrap();
        k.mprotect(pid, s, 4096, Prot::NONE).unwrap();
        // Pressure sends the shared page to swap while PROT_NONE keeps it.
        let a = k.mmap(pid, MmapArgs::anon(1024 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 1024, |i| i);
        assert!(k.shm.owner.is_empty(), "the shared page went to swap");
        k.mprotect(pid, s, 4096, Prot::RW).unwrap();
        assert_eq!(k.read_u64(pid, s).unwrap(), 42);
        // Unmapping puts each reference once (a debug build asserts it).
        k.munmap(pid, s, 4096).unwrap();
        k.exit(pid, 0).unwrap();
    }

    /// A trace's file of `pages` pages, on tmpfs.
    fn tmpfs_file(k: &mut Kernel, pages: u64) -> (FileId, ShmId) {
        let f = k.create_file("/dev/shm/t", Vec::new());
        k.grow_file(f, pages * 4096);
        let obj = k.make_tmpfs_file(f).unwrap();
        assert_eq!(k.make_tmpfs_file(f), Ok(obj), "made once");
        (f, obj)
    }

    #[test]
    fn a_tmpfs_file_keeps_its_pages_as_shared_memory() {
        let (mut k, pid) = booted();
        let n = 64u64;
        let (f, obj) = tmpfs_file(&mut k, n);
        // write() makes the first half; nothing is read from storage.
        assert_eq!(k.write_file(pid, f, 0, n / 2 * 4096), n / 2);
        // read() of a hole makes nothing.
        k.read_file(pid, f, n / 2 * 4096, 4096);
        let o = k.shm.objects[obj.0 as usize].as_ref().unwrap();
        assert_eq!(o.pages.len() as u64, n / 2);
        assert_eq!(k.page_cache_pages(), 0);
        assert_eq!(k.log.counters.file_reads, 0);
        // A mapping maps the object: resident pages by fault-around, holes one by one.
        let at = MmapArgs {
            addr: Some(VirtAddr(0x4000_0000)),
            fixed: true,
            shared: true,
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(n * 4096, Prot::READ)
        };
        let m = k.mmap(pid, at).unwrap();
        for i in 0..n {
            k.read_u64(pid, VirtAddr(m.0 + i * 4096)).unwrap();
        }
        assert_eq!(faults(&k, FaultKind::Shared), 2);
        assert_eq!(faults(&k, FaultKind::DemandZero), n / 2);
        assert_eq!(faults(&k, FaultKind::FileRead), 0);
        assert_eq!(k.process(pid).unwrap().rss().shmem, n);
        // The file outlives its mappings and its process.
        k.exit(pid, 0).unwrap();
        let o = k.shm.objects[obj.0 as usize].as_ref().unwrap();
        assert_eq!(o.pages.len() as u64, n);
    }

    #[test]
    fn a_tmpfs_file_under_pressure_goes_to_swap_and_read_brings_it_back() {
        for policy in [ReclaimPolicy::Clock, ReclaimPolicy::TwoList] {
            let mut k = boot_small(2 << 20, 8 << 20, policy);
            let pid = spawn(&mut k);
            // 4 MiB written into a tmpfs file on 2 MiB of RAM.
            let n = 1024u64;
            let (f, _) = tmpfs_file(&mut k, 0);
            for i in 0..n {
                assert_eq!(k.write_file(pid, f, i * 4096, 4096), 1, "{policy:?}");
            }
            let outs = k.log.counters.swap_outs;
            assert!(outs > n / 2, "{policy:?}: {outs}");
            assert_eq!(k.log.counters.writebacks, 0, "{policy:?}");
            // read() brings them back from swap without a fault.
            k.read_file(pid, f, 0, n * 4096);
            assert!(k.log.counters.swap_ins > 0, "{policy:?}");
            let taken: u64 = k.log.counters.faults.iter().sum();
            assert_eq!(taken, 0, "{policy:?}");
            assert!(k.process(pid).unwrap().is_running());
        }
    }

    #[test]
    fn a_tmpfs_file_pages_cached_at_start_are_resident() {
        let (mut k, pid) = booted();
        let f = k.create_file("/dev/shm/old", Vec::new());
        k.grow_file(f, 32 * 4096);
        k.make_tmpfs_file(f).unwrap();
        k.set_cached_at_start(f, 0, 16 * 4096);
        let at = MmapArgs {
            addr: Some(VirtAddr(0x4000_0000)),
            fixed: true,
            shared: true,
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(32 * 4096, Prot::READ)
        };
        let m = k.mmap(pid, at).unwrap();
        for i in 0..32 {
            k.read_u64(pid, VirtAddr(m.0 + i * 4096)).unwrap();
        }
        // The 16 resident pages by one fault; the 16 holes by a fault each.
        assert_eq!(faults(&k, FaultKind::Shared), 1);
        assert_eq!(faults(&k, FaultKind::DemandZero), 16);
    }

    #[test]
    fn a_dropped_tmpfs_file_goes_with_its_last_holder_and_mapping() {
        let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::TwoList);
        let a = spawn(&mut k);
        let n = 256u64;
        let (f, obj) = tmpfs_file(&mut k, n);
        let m = k
            .mmap(
                a,
                MmapArgs {
                    shared: true,
                    source: MapSource::File(f, 0),
                    ..MmapArgs::anon(n * 4096, Prot::RW)
                },
            )
            .unwrap();
        write_pages(&mut k, a, m, n, |i| i + 1);
        let child = k.fork(a).unwrap();
        let resident = |k: &Kernel| k.shm.objects[obj.0 as usize].as_ref().unwrap().pages.len();
        // Let go by the parent while mapped, and held by the child: it stays.
        k.drop_tmpfs_file(a, f).unwrap();
        k.munmap(a, m, n * 4096).unwrap();
        assert_eq!(resident(&k), n as usize);
        // The child ends; the child's mapping went with it: the pages go.
        k.exit(child, 0).unwrap();
        assert_eq!(resident(&k), 0);
        assert!(k.shm.owner.is_empty());
        // A file not let go stays whatever holds it.
        k.write_file(a, f, 0, 4096);
        k.exit(a, 0).unwrap();
        assert_eq!(resident(&k), 1);
        let disk = k.create_file("/disk", Vec::new());
        assert_eq!(k.drop_tmpfs_file(a, disk), Err(Errno::EINVAL));
    }

    #[test]
    fn only_an_unused_file_without_contents_becomes_a_tmpfs_file() {
        let (mut k, pid) = booted();
        let data = k.create_file("/data", vec![1; 4096]);
        assert_eq!(k.make_tmpfs_file(data), Err(Errno::EINVAL));
        let used = k.create_file("/used", Vec::new());
        k.write_file(pid, used, 0, 4096);
        assert_eq!(k.make_tmpfs_file(used), Err(Errno::EBUSY));
        assert_eq!(k.make_tmpfs_file(FileId(99)), Err(Errno::ENOENT));
    }

    #[test]
    fn shmdt_detaches_the_whole_attachment_and_only_it() {
        let (mut k, pid) = booted();
        let obj = k.shm_open("/seg", 4 * 4096).unwrap();
        let at = |addr: u64| MmapArgs {
            addr: Some(VirtAddr(addr)),
            fixed: true,
            shared: true,
            source: MapSource::Shm(obj, 0),
            ..MmapArgs::anon(4 * 4096, Prot::RW)
        };
        let (a, b) = (VirtAddr(0x3000_0000), VirtAddr(0x3000_4000));
        k.mmap(pid, at(a.0)).unwrap();
        k.mmap(pid, at(b.0)).unwrap();
        k.mprotect(pid, VirtAddr(a.0 + 4096), 4096, Prot::READ)
            .unwrap();
        assert_eq!(k.shm_detach(pid, VirtAddr(a.0 + 4096)), Err(Errno::EINVAL));
        let anon = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        assert_eq!(k.shm_detach(pid, anon), Err(Errno::EINVAL));
        k.shm_detach(pid, a).unwrap();
        let vmas = &k.mm(pid).unwrap().vmas;
        assert!(
            vmas.overlapping(a, b).is_empty(),
            "the split attachment went whole"
        );
        assert!(vmas.find(b).is_some(), "the next attachment stays");
        k.write_u64(pid, b, 3).unwrap();
    }
}
