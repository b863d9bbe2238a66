//! Shared memory: POSIX objects (`shm_open`, `shm_unlink`) and the objects behind shared
//! anonymous mappings. An object keeps its pages while it is named or mapped; its size
//! is committed when it is made.

use super::{Backing, Errno, Kernel, Pid, ShmId};
use crate::addr::{Pfn, VirtAddr};
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
}

/// Every shared-memory object, by [`ShmId`], and the names of the named ones.
#[derive(Debug, Default)]
pub(super) struct SharedMemory {
    /// The objects; a freed one leaves a hole its id is reused from.
    pub(super) objects: Vec<Option<ShmObject>>,
    /// The named objects.
    pub(super) names: BTreeMap<String, ShmId>,
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
        }))
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
        let named = self.shm.names.values().any(|&v| v == id);
        let mapped = self
            .tasks
            .procs
            .iter()
            .filter_map(|p| p.mm.as_ref())
            .any(|mm| {
                mm.vmas
                    .iter()
                    .any(|v| matches!(v.backing, Backing::Shm { obj, .. } if obj == id))
            });
        if named || mapped {
            return;
        }
        if let Some(obj) = self
            .shm
            .objects
            .get_mut(id.0 as usize)
            .and_then(|o| o.take())
        {
            self.uncommit(obj.size);
            for pfn in obj.pages.values() {
                self.put_frame(*pfn);
            }
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
