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
