//! The data path: loads, stores and fetches of a process through the MMU, with faults
//! handled on the way, and bytes moved to and from RAM or a device. The kernel's own
//! copies to and from user memory (what `read()` and `write()` do) take the same path at
//! supervisor privilege, and fail with EFAULT rather than a signal.

use super::fault::{FaultKind, Violation};
use super::frames::FrameKind;
use super::syscall::Errno;
use super::vma::Device;
use super::{Kernel, Pid, Signal};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::hw::{AccessKind, Privilege, Translation};
use thiserror::Error;

/// Why an access of a process did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AccessError {
    /// No process has that id.
    #[error("no process {0}")]
    NoSuchProcess(Pid),
    /// The process has exited or was killed.
    #[error("process {0} is not running")]
    NotRunning(Pid),
    /// The access was refused and the process got a signal.
    #[error("process {pid} got {signal} for a {access:?} of {va}: {}", reason.reason())]
    Signal {
        /// The process.
        pid: Pid,
        /// The signal.
        signal: Signal,
        /// The address.
        va: VirtAddr,
        /// The access.
        access: AccessKind,
        /// Why.
        reason: Violation,
    },
}

/// One translation an explained access tried, and what the fault handler made of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Try {
    /// The hardware's story.
    pub translation: Translation,
    /// After a fault: how the handler resolved it (the access is then retried), or the
    /// violation it found. `None` when the translation succeeded, or when the access
    /// had faulted too often to try again.
    pub handled: Option<Result<FaultKind, Violation>>,
}

/// One access told step by step (see [`Kernel::access_explained`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessStory {
    /// The process.
    pub pid: Pid,
    /// The address.
    pub va: VirtAddr,
    /// What the access did.
    pub kind: AccessKind,
    /// The translations tried, in order.
    pub tries: Vec<Try>,
    /// The physical address reached, or why not.
    pub result: Result<PhysAddr, AccessError>,
}

impl AccessStory {
    /// The story as text: each translation tried, as the hardware lived it, then what
    /// the kernel did about its fault.
    pub fn to_text(&self, paging: &crate::hw::Paging) -> String {
        use std::fmt::Write;
        // Writing to a String cannot fail: the `let _ =` below discard an `Ok(())`.
        let mut s = String::new();
        let indent = if self.tries.len() > 1 { "    " } else { "  " };
        for (i, t) in self.tries.iter().enumerate() {
            if self.tries.len() > 1 {
                let _ = writeln!(s, "  try {}:", i + 1);
            }
            for line in t.translation.to_text(paging).lines() {
                let _ = writeln!(s, "{indent}{line}");
            }
            match t.handled {
                Some(Ok(kind)) => {
                    let class = match kind.class() {
                        super::FaultClass::Minor => "a minor fault",
                        super::FaultClass::Major => "a major fault (storage read)",
                        super::FaultClass::Cow => "a copy-on-write fault",
                        super::FaultClass::Spurious => "a spurious fault",
                        super::FaultClass::Violation => "a violation",
                    };
                    let _ = writeln!(
                        s,
                        "  kernel: {} ({class}) handled; the access is retried",
                        kind.name()
                    );
                }
                Some(Err(v)) => {
                    let _ = writeln!(
                        s,
                        "  kernel: {}: {:?} to pid {}",
                        v.reason(),
                        v.signal(),
                        self.pid.0
                    );
                }
                None => {}
            }
        }
        // A success ends the last translation's story; a failure is told here.
        if let Err(e) = &self.result {
            let _ = writeln!(s, "  => {e}");
        }
        s
    }
}

/// Faults one access may take before it is given up as unresolvable (a write to a page
/// never touched takes two on machines where the first read mapped the zero page; a
/// stale TLB entry adds one).
const MAX_FAULTS_PER_ACCESS: u32 = 4;

/// The contents of frames the kernel's own allocator handed out. Those frames lie in RAM
/// by construction, so these cannot fail; a debug build checks it.
impl Kernel {
    /// Fills frame `pfn` with zeros.
    pub(super) fn zero_frame(&mut self, pfn: Pfn) {
        let r = self.machine.ram.zero_frames(pfn, 1);
        debug_assert!(r.is_ok(), "frame {pfn} outside RAM");
    }

    /// Copies frame `src` into frame `dst`.
    /// A copy holds bytes other than zeros if its source was so marked, or was a
    /// file's page.
    pub(super) fn copy_frame(&mut self, src: Pfn, dst: Pfn) {
        let r = self.machine.ram.copy_frame(src, dst);
        debug_assert!(r.is_ok(), "frame {src} or {dst} outside RAM");
        let marked = self.frames.nonzero(src) || self.frames.kind(src) == FrameKind::File;
        self.frames.set_nonzero(dst, marked);
    }

    /// Writes `data` (at most a page) at the start of frame `pfn`.
    pub(super) fn write_frame(&mut self, pfn: Pfn, data: &[u8]) {
        let pa = pfn.addr(self.machine.spec.paging.page_shift);
        let r = self.machine.ram.write(pa, data);
        debug_assert!(r.is_ok(), "frame {pfn} outside RAM");
    }

    /// Reads the start of frame `pfn` into `buf` (at most a page).
    pub(super) fn read_frame(&self, pfn: Pfn, buf: &mut [u8]) {
        let pa = pfn.addr(self.machine.spec.paging.page_shift);
        let r = self.machine.ram.read(pa, buf);
        debug_assert!(r.is_ok(), "frame {pfn} outside RAM");
    }
}

impl Kernel {
    /// Makes one access of `pid` at `va` (switching to it first if needed); faults are
    /// handled as they come. Returns the physical address reached.
    #[inline]
    pub fn access(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
    ) -> Result<PhysAddr, AccessError> {
        if self.tasks.current != Some(pid) {
            self.enter(pid)?;
        }
        if let Some(p) = self.tasks.procs.get_mut(pid.0 as usize - 1) {
            p.stats.accesses += 1;
        }
        match self
            .machine
            .mmu
            .translate(&mut self.machine.ram, va, kind, Privilege::User)
        {
            Ok(pa) => Ok(pa),
            Err(f) => self.access_slow(pid, va, kind, Privilege::User, f),
        }
    }

    /// Makes a run of accesses for `pid`, writing the physical addresses to `out`:
    /// runs of TLB hits go through [`crate::hw::Mmu::translate_run`], anything else
    /// through [`Kernel::access`]. `kinds` is one kind for the whole run or one per
    /// access. Stops at the first access that fails and returns its index with the
    /// error (the addresses before it are in `out`).
    pub fn access_run<K: crate::hw::RunKinds>(
        &mut self,
        pid: Pid,
        vas: &[VirtAddr],
        kinds: K,
        out: &mut [PhysAddr],
    ) -> Result<(), (usize, AccessError)> {
        let n = vas.len().min(out.len()).min(kinds.len());
        if self.tasks.current != Some(pid) {
            self.enter(pid).map_err(|e| (0, e))?;
        }
        if self.khugepaged_continuous() {
            // khugepaged scans after every access: one at a time.
            for i in 0..n {
                out[i] = self
                    .access(pid, vas[i], kinds.kind(i))
                    .map_err(|e| (i, e))?;
                self.khugepaged_if_due();
            }
            return Ok(());
        }
        let mut i = 0;
        // The entry the last prefetch fetched, and the access it is for.
        let mut fetched: Option<(usize, PhysAddr)> = None;
        while i < n {
            let done = self.machine.mmu.translate_run(
                &vas[i..n],
                kinds.skip(i),
                Privilege::User,
                &mut out[i..n],
            );
            if let Some(p) = self.tasks.procs.get_mut(pid.0 as usize - 1) {
                p.stats.accesses += done as u64;
            }
            i += done;
            if i >= n {
                break;
            }
            // A run that stopped at a change of TLB (a fetch after loads and stores,
            // or the reverse) goes on through the other one; one that stopped at an
            // access its TLB cannot take makes that access alone.
            let fetch = |k: usize| kinds.kind(k) == AccessKind::Execute;
            if done == 0 || fetch(i) == fetch(i - 1) {
                // The next access's entry, fetched an access ago: if it is a swap
                // entry, its fault will look at the slot.
                if let Some((at, pte)) = fetched {
                    if at == i + 1 {
                        self.prefetch_swap_entry(pte);
                    }
                }
                // The walk two accesses on, if it comes to one, finds its entry cached.
                if i + 2 < n {
                    fetched = self
                        .machine
                        .mmu
                        .prefetch_walk(&self.machine.ram, vas[i + 2])
                        .map(|pte| (i + 2, pte));
                }
                out[i] = self
                    .access(pid, vas[i], kinds.kind(i))
                    .map_err(|e| (i, e))?;
                i += 1;
            }
        }
        self.khugepaged_if_due();
        Ok(())
    }

    /// Makes one access of `pid` at `va` as [`Kernel::access`] does, but tells it step
    /// by step: every translation tried, with the hardware's story, and what the fault
    /// handler did after each one that faulted. This is the slow path of the
    /// step-by-step view (`vmsim run --html`); replays use [`Kernel::access_run`].
    /// Counters and state end as [`Kernel::access`] leaves them.
    pub fn access_explained(&mut self, pid: Pid, va: VirtAddr, kind: AccessKind) -> AccessStory {
        let mut story = AccessStory {
            pid,
            va,
            kind,
            tries: Vec::new(),
            result: Err(AccessError::NoSuchProcess(pid)),
        };
        if self.tasks.current != Some(pid) {
            if let Err(e) = self.enter(pid) {
                story.result = Err(e);
                return story;
            }
        }
        if let Some(p) = self.tasks.procs.get_mut(pid.0 as usize - 1) {
            p.stats.accesses += 1;
        }
        // As in `access_slow`: if every try is undone before the access goes through,
        // the process cannot make progress.
        let mut last = Violation::OutOfMemory;
        for _ in 0..=MAX_FAULTS_PER_ACCESS {
            let t = self.machine.mmu.translate_explained(
                &mut self.machine.ram,
                va,
                kind,
                Privilege::User,
            );
            let fault = match t.result {
                Ok(pa) => {
                    story.tries.push(Try {
                        translation: t,
                        handled: None,
                    });
                    story.result = Ok(pa);
                    return story;
                }
                Err(f) => f,
            };
            if story.tries.len() as u32 == MAX_FAULTS_PER_ACCESS {
                story.tries.push(Try {
                    translation: t,
                    handled: None,
                });
                break;
            }
            let handled = self.handle_fault(pid, fault);
            story.tries.push(Try {
                translation: t,
                handled: Some(handled),
            });
            match handled {
                Ok(_) => {
                    if self.tasks.current != Some(pid) {
                        if let Err(e) = self.enter(pid) {
                            story.result = Err(e);
                            return story;
                        }
                    }
                }
                Err(v) => {
                    last = v;
                    break;
                }
            }
        }
        self.deliver(pid, va, last);
        story.result = Err(AccessError::Signal {
            pid,
            signal: last.signal(),
            va,
            access: kind,
            reason: last,
        });
        story
    }

    #[cold]
    fn enter(&mut self, pid: Pid) -> Result<(), AccessError> {
        match self.process(pid) {
            None => Err(AccessError::NoSuchProcess(pid)),
            Some(p) if !p.is_running() => Err(AccessError::NotRunning(pid)),
            Some(_) => self
                .switch_to(pid)
                .map_err(|_| AccessError::NotRunning(pid)),
        }
    }

    /// The access path after a fault: handle, retry, and deliver what cannot be handled.
    #[inline(never)]
    fn access_slow(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
        mode: Privilege,
        first: crate::hw::Fault,
    ) -> Result<PhysAddr, AccessError> {
        let mut fault = first;
        // If every try is undone before the access can go through (memory so short that
        // the page is taken again at once), the process cannot make progress.
        let mut last = Violation::OutOfMemory;
        for _ in 0..MAX_FAULTS_PER_ACCESS {
            match self.handle_fault(pid, fault) {
                Ok(_) => {
                    // The handler may have switched away (OOM kill of another process).
                    if self.tasks.current != Some(pid) {
                        self.enter(pid)?;
                    }
                }
                Err(v) => {
                    last = v;
                    break;
                }
            }
            fault = match self
                .machine
                .mmu
                .translate(&mut self.machine.ram, va, kind, mode)
            {
                Ok(pa) => return Ok(pa),
                Err(f) => f,
            };
        }
        if mode == Privilege::User {
            self.deliver(pid, va, last);
        }
        Err(AccessError::Signal {
            pid,
            signal: last.signal(),
            va,
            access: kind,
            reason: last,
        })
    }

    /// Reads bytes of `pid`'s memory at `va` into `buf`, as the process's loads would.
    pub fn read(&mut self, pid: Pid, va: VirtAddr, buf: &mut [u8]) -> Result<(), AccessError> {
        self.copy(
            pid,
            va,
            buf.len(),
            AccessKind::Read,
            Privilege::User,
            |k, pa, off, n| {
                k.phys_read(pa, &mut buf[off..off + n]);
            },
        )
    }

    /// Writes `data` into `pid`'s memory at `va`, as the process's stores would.
    pub fn write(&mut self, pid: Pid, va: VirtAddr, data: &[u8]) -> Result<(), AccessError> {
        self.copy(
            pid,
            va,
            data.len(),
            AccessKind::Write,
            Privilege::User,
            |k, pa, off, n| {
                k.phys_write(pa, &data[off..off + n]);
            },
        )
    }

    /// Reads a little-endian `u64` from `pid`'s memory.
    pub fn read_u64(&mut self, pid: Pid, va: VirtAddr) -> Result<u64, AccessError> {
        let mut b = [0u8; 8];
        self.read(pid, va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u64` into `pid`'s memory.
    pub fn write_u64(&mut self, pid: Pid, va: VirtAddr, v: u64) -> Result<(), AccessError> {
        self.write(pid, va, &v.to_le_bytes())
    }

    /// The kernel copies `buf.len()` bytes from `pid`'s memory at `va` (the path of a
    /// `write()` syscall's buffer), faulting pages in as needed. A bad address is EFAULT,
    /// not a signal.
    pub fn copy_from_user(&mut self, pid: Pid, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        self.copy(
            pid,
            va,
            buf.len(),
            AccessKind::Read,
            Privilege::Supervisor,
            |k, pa, off, n| {
                k.phys_read(pa, &mut buf[off..off + n]);
            },
        )
        .map_err(to_errno)
    }

    /// The kernel copies `data` into `pid`'s memory at `va` (the path of a `read()`
    /// syscall's buffer). A bad address is EFAULT.
    pub fn copy_to_user(&mut self, pid: Pid, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        self.copy(
            pid,
            va,
            data.len(),
            AccessKind::Write,
            Privilege::Supervisor,
            |k, pa, off, n| {
                k.phys_write(pa, &data[off..off + n]);
            },
        )
        .map_err(to_errno)
    }

    /// A supervisor access in the current address space (for kernel addresses such as
    /// the direct map). Faults are not handled: the kernel's own range is fixed.
    pub fn kernel_access(&mut self, va: VirtAddr, kind: AccessKind) -> Result<PhysAddr, Errno> {
        self.machine
            .mmu
            .translate(&mut self.machine.ram, va, kind, Privilege::Supervisor)
            .map_err(|_| Errno::EFAULT)
    }

    /// Reads kernel memory (the direct map) at `va` into `buf`.
    pub fn kernel_read(&mut self, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        let ps = self.page_size();
        let mut off = 0;
        while off < buf.len() {
            let at = va.checked_add(off as u64).ok_or(Errno::EFAULT)?;
            let n = ((ps - at.page_offset(ps)) as usize).min(buf.len() - off);
            let pa = self.kernel_access(at, AccessKind::Read)?;
            self.phys_read(pa, &mut buf[off..off + n]);
            off += n;
        }
        Ok(())
    }

    /// Page by page: translate (handling faults) and move bytes.
    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        len: usize,
        kind: AccessKind,
        mode: Privilege,
        mut mv: impl FnMut(&mut Kernel, PhysAddr, usize, usize),
    ) -> Result<(), AccessError> {
        let ps = self.page_size();
        let mut off = 0;
        while off < len {
            let at = va.checked_add(off as u64).ok_or(AccessError::Signal {
                pid,
                signal: Signal::Segv,
                va,
                access: kind,
                reason: Violation::NonCanonical,
            })?;
            let n = ((ps - at.page_offset(ps)) as usize).min(len - off);
            let pa = self.translate_for(pid, at, kind, mode)?;
            mv(self, pa, off, n);
            off += n;
        }
        Ok(())
    }

    fn translate_for(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
        mode: Privilege,
    ) -> Result<PhysAddr, AccessError> {
        if mode == Privilege::User {
            return self.access(pid, va, kind);
        }
        if self.tasks.current != Some(pid) {
            self.enter(pid)?;
        }
        match self
            .machine
            .mmu
            .translate(&mut self.machine.ram, va, kind, mode)
        {
            Ok(pa) => Ok(pa),
            Err(f) => self.access_slow(pid, va, kind, mode, f),
        }
    }

    /// Reads physical memory or a device.
    pub fn phys_read(&mut self, pa: PhysAddr, buf: &mut [u8]) {
        let ps = self.page_size();
        match Device::decode(pa, ps).filter(|_| self.space.display.is_some()) {
            Some((Device::Display, off)) => {
                if let Some(d) = self.space.display.as_ref() {
                    d.read(off, buf);
                }
            }
            Some((Device::Rtc, off)) => {
                let now = self.now_ns().to_le_bytes();
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = now
                        .get((off as usize).wrapping_add(i))
                        .copied()
                        .unwrap_or(0);
                }
            }
            None => {
                if self.machine.ram.read(pa, buf).is_err() {
                    buf.fill(0xff);
                }
            }
        }
    }

    /// Writes physical memory or a device.
    pub fn phys_write(&mut self, pa: PhysAddr, data: &[u8]) {
        let ps = self.page_size();
        match Device::decode(pa, ps).filter(|_| self.space.display.is_some()) {
            Some((Device::Display, off)) => {
                if let Some(d) = self.space.display.as_mut() {
                    d.write(off, data);
                }
            }
            Some((Device::Rtc, _)) => {}
            None => {
                // No memory there: the write is dropped, as a bus drops it (and as
                // `phys_read` reads all ones).
                let _ = self.machine.ram.write(pa, data);
            }
        }
    }
}

fn to_errno(e: AccessError) -> Errno {
    match e {
        AccessError::NoSuchProcess(_) | AccessError::NotRunning(_) => Errno::ESRCH,
        AccessError::Signal { .. } => Errno::EFAULT,
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn the_display_shows_what_a_process_wrote() {
        let (mut k, pid) = booted();
        let screen = k
            .mmap(
                pid,
                MmapArgs {
                    shared: true,
                    source: MapSource::Device(Device::Display),
                    ..MmapArgs::anon(4096, Prot::RW)
                },
            )
            .unwrap();
        let text: Vec<u8> = b"Hello, vmsim".iter().flat_map(|&c| [c, 0x1f]).collect();
        k.write(pid, VirtAddr(screen.0 + 160 * 2), &text).unwrap();
        let shown = k.display().unwrap().screen();
        assert_eq!(shown.lines().nth(2), Some("Hello, vmsim"));
        assert_eq!(faults(&k, FaultKind::Device), 1);
        // Mapped uncached.
        let m = k
            .mm(pid)
            .unwrap()
            .pt
            .lookup(&k.machine.spec.paging, &k.machine.ram, screen)
            .unwrap();
        assert!(m.flags.contains(crate::hw::Flags::NO_CACHE));
    }

    #[test]
    fn the_clock_reads_simulated_time() {
        let (mut k, pid) = booted();
        let rtc = k
            .mmap(
                pid,
                MmapArgs {
                    shared: true,
                    source: MapSource::Device(Device::Rtc),
                    ..MmapArgs::anon(4096, Prot::READ)
                },
            )
            .unwrap();
        let t0 = k.read_u64(pid, rtc).unwrap();
        let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, 64, |i| i);
        let t1 = k.read_u64(pid, rtc).unwrap();
        assert!(t0 > 0 && t1 > t0, "{t0} {t1}");
        assert_eq!(t1, k.now_ns());
    }

    #[test]
    fn copies_to_and_from_user_fault_pages_in_or_fail_with_efault() {
        let (mut k, pid) = booted();
        let a = k.mmap(pid, MmapArgs::anon(3 * 4096, Prot::RW)).unwrap();
        let data: Vec<u8> = (0..6000).map(|i| i as u8).collect();
        k.copy_to_user(pid, VirtAddr(a.0 + 100), &data).unwrap();
        let mut back = vec![0u8; 6000];
        k.copy_from_user(pid, VirtAddr(a.0 + 100), &mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(faults(&k, FaultKind::DemandZero), 2);
        assert_eq!(
            k.copy_to_user(pid, VirtAddr(0x10), b"x"),
            Err(Errno::EFAULT)
        );
        assert!(k.process(pid).unwrap().is_running(), "EFAULT, not a signal");
    }

    #[test]
    fn a_run_of_accesses_is_the_same_as_single_accesses() {
        let mut one = boot("x86-64");
        let mut run = boot("x86-64");
        let mut vas = Vec::new();
        for k in [&mut one, &mut run] {
            let pid = spawn(k);
            let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
            vas = (0..5000u64)
                .map(|i| VirtAddr(a.0 + (i * 7919 % 64) * 4096 + i % 4096))
                .collect();
        }
        let pid = Pid(1);
        let singles: Vec<PhysAddr> = vas
            .iter()
            .map(|&va| one.access(pid, va, AccessKind::Write).unwrap())
            .collect();
        let mut out = vec![PhysAddr(0); vas.len()];
        run.access_run(pid, &vas, AccessKind::Write, &mut out)
            .unwrap();
        assert_eq!(singles, out);
        assert_eq!(one.counters(), run.counters());
        assert_eq!(one.machine.mmu.counters, run.machine.mmu.counters);
        assert_eq!(
            one.process(pid).unwrap().stats,
            run.process(pid).unwrap().stats
        );
        // A run stops at the access that fails, with its index.
        let bad = [vas[0], VirtAddr(0x10), vas[1]];
        let e = run
            .access_run(pid, &bad, AccessKind::Read, &mut out)
            .unwrap_err();
        assert_eq!(e.0, 1);
    }
}
