//! `mmap`: a new area of anonymous memory, a file, a shared-memory object or a device,
//! placed where the caller asks or below the last one (top-down, as Linux does).

use super::mlock::Mlock;
use super::vma::{Backing, Device, FileId, Prot, ShmId, Vma, VmaRole};
use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;

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
    /// Anonymous huge pages from the hugetlb pool of `page_bytes` pages
    /// (`MAP_HUGETLB`), reserved unless `noreserve` (`MAP_NORESERVE`).
    HugeTlb {
        /// The pool's page size in bytes.
        page_bytes: u64,
        /// `MAP_NORESERVE`.
        noreserve: bool,
    },
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

impl Kernel {
    /// `mmap`: maps `args.len` bytes and returns the address. Mapping allocates nothing;
    /// pages come on first touch.
    pub fn mmap(&mut self, pid: Pid, args: MmapArgs) -> Result<VirtAddr, Errno> {
        let mut len = self.round_len(args.len)?;
        self.check_wx(args.prot)?;
        let ps = self.page_size();
        let backing = match args.source {
            MapSource::HugeTlb {
                page_bytes,
                noreserve,
            } => {
                if args.fixed && args.addr.is_some_and(|a| a.0 % page_bytes != 0) {
                    return Err(Errno::EINVAL);
                }
                let (b, l) = self.hugetlb_reserve(page_bytes, len, noreserve)?;
                len = l;
                b
            }
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
                if let Some(obj) = f.shmem {
                    // On tmpfs: its pages are shared memory.
                    Backing::Shm { obj, offset }
                } else {
                    if args.prot.contains(Prot::EXEC) {
                        // A program or a library: in the page cache already
                        // (readahead.rs).
                        self.cache.files[file.0 as usize].executable = true;
                    }
                    self.cache.files[file.0 as usize].mapped = true;
                    self.kmem_lookup(pid, file);
                    Backing::File { file, offset }
                }
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
            if let Backing::HugeTlb {
                page_bytes,
                reserved: true,
            } = backing
            {
                k.hugetlb_release(page_bytes, len);
            }
        };
        let start = match self.place(pid, &args, len) {
            Ok(s) => s,
            Err(e) => {
                release(self);
                return Err(e);
            }
        };
        let accounted = !args.shared
            && args.prot.contains(Prot::WRITE)
            && !matches!(backing, Backing::HugeTlb { .. });
        if accounted {
            if let Err(e) = self.commit(len) {
                release(self);
                return Err(e);
            }
        }
        if args.fixed {
            if let Err(e) = self.munmap(pid, start, len) {
                release(self);
                return Err(e);
            }
        }
        let mm = self.mm_mut(pid)?;
        // After mlockall(MCL_FUTURE) a new mapping is locked (hugetlb and device
        // mappings never are, as Linux's VM_SPECIAL ones are not).
        let locked = match backing {
            Backing::HugeTlb { .. } | Backing::Device(_) => Mlock::Unlocked,
            _ => mm.lock_future,
        };
        mm.vmas.insert(Vma {
            start,
            end: VirtAddr(start.0 + len),
            prot: args.prot,
            shared: args.shared || matches!(backing, Backing::Device(_)),
            backing,
            role: VmaRole::Mmap,
            accounted,
            huge: Default::default(),
            access: Default::default(),
            locked,
            fork: Default::default(),
            swap_ra: Default::default(),
        });
        if accounted {
            mm.committed += len;
        }
        if let (MapSource::File(..), Backing::Shm { obj, .. }) = (args.source, backing) {
            // A tmpfs file mapped: the process holds it.
            self.tmpfs_hold(pid, obj);
        }
        self.populate_new_locked(pid, start, len, locked);
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
        if let MapSource::HugeTlb { page_bytes, .. } = args.source {
            // On the huge page's boundary (`hugetlb_get_unmapped_area`).
            if let Some(hint) = args.addr.filter(|h| h.0 % page_bytes == 0) {
                if hint >= self.space.mmap_min
                    && self.check_range(hint, len).is_ok()
                    && !mm.vmas.overlaps(hint, VirtAddr(hint.0 + len))
                {
                    return Ok(hint);
                }
            }
            let bottom = self.space.mmap_min.max(mm.brk);
            let start = mm
                .vmas
                .gap_below(mm.mmap_base, bottom, len + page_bytes)
                .ok_or(Errno::ENOMEM)?;
            let top = start.0 + page_bytes + len;
            return Ok(VirtAddr((top - len) & !(page_bytes - 1)));
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
        let bottom = self.space.mmap_min.max(mm.brk);
        // Linux (6.7 on) places a private anonymous mapping whose length is a multiple
        // of the huge-page size on a huge-page boundary (`thp_get_unmapped_area`): it
        // looks for room for one huge page more and aligns inside it, at the top. vmsim
        // does so where every such mapping may get huge pages (THP mode `always`), so
        // that runs in the other modes keep the placement base pages always had;
        // recorded traces carry Linux's own placement (the recorder's `align`).
        let huge = self.hpage_pages() * self.page_size();
        if huge > 0
            && self.config.thp == super::thp::ThpMode::Always
            && args.source == MapSource::Anon
            && !args.shared
            && len % huge == 0
        {
            if let Some(start) = mm.vmas.gap_below(mm.mmap_base, bottom, len + huge) {
                let up = (huge - start.0 % huge) % huge;
                return Ok(VirtAddr(start.0 + if up == 0 { huge } else { up }));
            }
        }
        mm.vmas
            .gap_below(mm.mmap_base, bottom, len)
            .ok_or(Errno::ENOMEM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::MachineSpec;
    use crate::os::KernelConfig;
    use crate::os::Program;

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
