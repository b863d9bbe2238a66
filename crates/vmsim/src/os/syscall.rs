//! The syscall surface, with Linux's semantics and error values: [`Errno`] and the
//! argument checks every call shares. Each call lives in a file of its name: `mmap`,
//! `munmap`, `mprotect`, `mremap`, `brk`, `madvise`, `fork`, `exec`, `exit`, and `shm`
//! (POSIX shared memory). Errors are values; nothing panics.

use super::vma::Prot;
use super::Kernel;
use crate::addr::VirtAddr;
use crate::hw::{MapError, SetSoftError};
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
    /// The object is in use in a way the call cannot undo (a file already cached or
    /// mapped made a tmpfs file).
    #[error("EBUSY: device or resource busy")]
    EBUSY,
    /// No room left in a fixed-size table (the 65,536th memory group).
    #[error("ENOSPC: no space left")]
    ENOSPC,
}

/// The errno a syscall returns when a page-table operation fails: out of frames for
/// tables is out of memory (as Linux's `pte_alloc` failing); an address the format
/// cannot hold is a bad address; anything else is a broken invariant of the kernel's
/// own tables, reported as `EFAULT` rather than panicking.
impl From<MapError> for Errno {
    fn from(e: MapError) -> Errno {
        match e {
            MapError::OutOfFrames => Errno::ENOMEM,
            MapError::NonCanonical { .. } => Errno::EINVAL,
            _ => Errno::EFAULT,
        }
    }
}

/// A software entry that does not fit the format is out of memory, as Linux's
/// `PROT_NONE` on a frame it cannot encode would be; the walk's failures as
/// [`MapError`]'s.
impl From<SetSoftError> for Errno {
    fn from(e: SetSoftError) -> Errno {
        match e {
            SetSoftError::TooWide { .. } => Errno::ENOMEM,
            SetSoftError::Map(m) => m.into(),
        }
    }
}

impl Kernel {
    pub(super) fn round_len(&self, len: u64) -> Result<u64, Errno> {
        let ps = self.page_size();
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        len.checked_add(ps - 1)
            .map(|l| l & !(ps - 1))
            .ok_or(Errno::ENOMEM)
    }

    pub(super) fn check_range(&self, addr: VirtAddr, len: u64) -> Result<VirtAddr, Errno> {
        if !addr.is_aligned(self.page_size()) {
            return Err(Errno::EINVAL);
        }
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > self.space.task_size {
            return Err(Errno::EINVAL);
        }
        Ok(end)
    }

    pub(super) fn check_wx(&self, prot: Prot) -> Result<(), Errno> {
        if self.config.wx && prot.contains(Prot::WRITE | Prot::EXEC) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn syscalls_reject_bad_arguments_with_errors() {
        let (mut k, pid) = booted();
        assert_eq!(k.mmap(pid, MmapArgs::anon(0, Prot::RW)), Err(Errno::EINVAL));
        assert_eq!(k.munmap(pid, VirtAddr(0x1001), 4096), Err(Errno::EINVAL));
        assert_eq!(
            k.mprotect(pid, VirtAddr(0x7000_0000), 4096, Prot::READ),
            Err(Errno::ENOMEM)
        );
        let fixed_high = MmapArgs {
            addr: Some(VirtAddr(0xffff_8000_0000_0000)),
            fixed: true,
            ..MmapArgs::anon(4096, Prot::RW)
        };
        assert_eq!(k.mmap(pid, fixed_high), Err(Errno::EINVAL));
        assert_eq!(k.fork(Pid(99)), Err(Errno::ESRCH));
        assert_eq!(k.shm_unlink("/none"), Err(Errno::ENOENT));
        let f = MmapArgs {
            source: MapSource::File(FileId(77), 0),
            ..MmapArgs::anon(4096, Prot::READ)
        };
        assert_eq!(k.mmap(pid, f), Err(Errno::ENOENT));
    }

    #[test]
    fn a_page_table_failure_becomes_the_errno_linux_would_give() {
        use crate::hw::{MapError, SetSoftError, SoftPte};
        assert_eq!(Errno::from(MapError::OutOfFrames), Errno::ENOMEM);
        let va = VirtAddr(1 << 63);
        assert_eq!(Errno::from(MapError::NonCanonical { va }), Errno::EINVAL);
        let level = 1;
        assert_eq!(
            Errno::from(MapError::AlreadyMapped { va, level }),
            Errno::EFAULT
        );
        let entry = SoftPte::Swap(crate::addr::SwapSlot(1));
        assert_eq!(Errno::from(SetSoftError::TooWide { entry }), Errno::ENOMEM);
        let walk = SetSoftError::Map(MapError::OutOfFrames);
        assert_eq!(Errno::from(walk), Errno::ENOMEM);
    }
}
