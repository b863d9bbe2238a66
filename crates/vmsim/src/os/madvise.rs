//! `madvise(MADV_DONTNEED)`: a range's pages dropped while its mapping stays (the
//! next touch faults in zeros or the file's bytes again).

use super::{Errno, Kernel, Pid};
use crate::addr::VirtAddr;

impl Kernel {
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

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn madvise_dontneed_drops_pages() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write_u64(pid, a, 5).unwrap();
        k.madvise_dontneed(pid, a, 4096).unwrap();
        assert_eq!(k.process(pid).unwrap().rss().anon, 0);
        assert_eq!(k.read_u64(pid, a).unwrap(), 0);
        assert_eq!(
            k.madvise_dontneed(pid, VirtAddr(0x10000), 4096),
            Err(Errno::ENOMEM)
        );
    }
}
