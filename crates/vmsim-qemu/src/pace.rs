//! Pacing: the threads of a recorded process advance at one rate, as they do natively
//! on a machine with a CPU for each.
//!
//! The ring puts every thread's accesses in the order QEMU made them, and QEMU's order
//! is not the machine's: its threads share the host's cores with the recorder and with
//! each other, and one may run far ahead while another waits for a core. Natively, two
//! threads of `while (1) touch(next page)` on a two-CPU machine touch their pages at
//! the same rate, so their memory is in use at once; under QEMU one thread may finish
//! half its work before the other starts, and a replay of that order finds half the
//! memory pressure (a program of two threads sweeping 32 MiB each under a 40 MiB limit
//! swapped in 10k pages replayed from QEMU's order and 16.4k natively).
//!
//! So each thread counts its accesses (its clock), and one that gets [`WINDOW`]
//! accesses ahead of the slowest other running thread waits for it. A thread in a
//! system call (blocked on a futex in `pthread_join`, sleeping, reading) is not
//! running: nobody waits for it, and when it returns its clock moves up to the others'
//! (it rejoins the present rather than being owed the time it was away). A wait lasts
//! at most [`MOST_WAIT`]: the slow thread may be stuck behind the waiting one inside
//! QEMU (an exclusive section waits for every vCPU), and a bounded wait cannot
//! deadlock.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// vCPUs paced (QEMU numbers a process's threads from 0 and reuses free numbers);
/// a thread above this is not paced, nor waited for.
pub const VCPUS: usize = 256;
/// Accesses a thread makes between looks at the others.
pub const CHECK: u32 = 64;
/// How far (accesses) a thread may run ahead of the slowest other running thread.
pub const WINDOW: u64 = 1024;
/// The longest one wait lasts.
pub const MOST_WAIT: Duration = Duration::from_millis(20);

struct Vcpu {
    /// Accesses made (and the present it joined when it came back from a system call).
    clock: AtomicU64,
    /// Not running: in a system call, exited, or never started.
    away: AtomicBool,
}

/// One process's threads' clocks.
pub struct Pace {
    /// The process has had more than one thread.
    on: AtomicBool,
    vcpus: Box<[Vcpu]>,
    /// One past the highest vCPU seen.
    top: AtomicUsize,
}

thread_local! {
    /// Accesses this thread makes before it looks at the others again.
    static UNTIL_CHECK: Cell<u32> = const { Cell::new(CHECK) };
}

impl Default for Pace {
    fn default() -> Self {
        Self::new()
    }
}

impl Pace {
    /// No thread running yet but the first, vCPU 0.
    pub fn new() -> Pace {
        let vcpus = (0..VCPUS)
            .map(|i| Vcpu {
                clock: AtomicU64::new(0),
                away: AtomicBool::new(i != 0),
            })
            .collect();
        Pace {
            on: AtomicBool::new(false),
            vcpus,
            top: AtomicUsize::new(1),
        }
    }

    /// The slowest clock among the running threads other than `me`, if any.
    fn present(&self, me: usize) -> Option<u64> {
        let top = self.top.load(Relaxed).min(VCPUS);
        self.vcpus[..top]
            .iter()
            .enumerate()
            .filter(|&(i, v)| i != me && !v.away.load(Relaxed))
            .map(|(_, v)| v.clock.load(Relaxed))
            .min()
    }

    /// A new thread on `vcpu`, made by the thread on `parent`: it starts at its
    /// parent's clock, and from now on threads are paced.
    pub fn thread_started(&self, vcpu: u32, parent: u32) {
        let (me, parent) = (vcpu as usize, parent as usize);
        let (Some(v), Some(p)) = (self.vcpus.get(me), self.vcpus.get(parent)) else {
            return;
        };
        v.clock.store(p.clock.load(Relaxed), Relaxed);
        v.away.store(false, Relaxed);
        self.top.fetch_max(me + 1, Relaxed);
        self.on.store(true, Relaxed);
    }

    /// The thread on `vcpu` stops running: it enters a system call, or exits.
    pub fn away(&self, vcpu: u32) {
        if let Some(v) = self.vcpus.get(vcpu as usize) {
            v.away.store(true, Relaxed);
        }
    }

    /// The thread on `vcpu` runs again (back from a system call): its clock joins the
    /// present.
    pub fn back(&self, vcpu: u32) {
        let me = vcpu as usize;
        let Some(v) = self.vcpus.get(me) else {
            return;
        };
        if let Some(now) = self.present(me) {
            v.clock.fetch_max(now, Relaxed);
        }
        v.away.store(false, Relaxed);
    }

    /// In a forked child: only the thread on `vcpu` (the one that forked) is left, and
    /// nobody is paced.
    pub fn forked(&self, vcpu: u32) {
        self.on.store(false, Relaxed);
        for (i, v) in self.vcpus.iter().enumerate() {
            v.away.store(i != vcpu as usize, Relaxed);
        }
    }

    /// One access by the thread on `vcpu`: every [`CHECK`] of them it moves its clock
    /// on and, when it is [`WINDOW`] ahead of the slowest other running thread, waits.
    #[inline]
    pub fn tick(&self, vcpu: u32) {
        let left = UNTIL_CHECK.with(|c| {
            let left = c.get() - 1;
            c.set(if left == 0 { CHECK } else { left });
            left
        });
        if left == 0 && self.on.load(Relaxed) {
            self.check(vcpu as usize);
        }
    }

    #[cold]
    fn check(&self, me: usize) {
        let Some(v) = self.vcpus.get(me) else {
            return;
        };
        let clock = v.clock.load(Relaxed) + CHECK as u64;
        v.clock.store(clock, Relaxed);
        let mut since = None;
        while self.present(me).is_some_and(|p| clock > p + WINDOW) {
            let start = *since.get_or_insert_with(Instant::now);
            if start.elapsed() >= MOST_WAIT {
                return;
            }
            std::thread::yield_now();
        }
    }

    /// The clock of the thread on `vcpu`.
    #[cfg(test)]
    fn clock(&self, vcpu: u32) -> u64 {
        self.vcpus
            .get(vcpu as usize)
            .map_or(0, |v| v.clock.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_thread_ahead_waits_for_the_slowest_running_one() {
        let pace = Arc::new(Pace::new());
        pace.thread_started(1, 0);
        // vCPU 1 runs far ahead while vCPU 0 makes nothing: each check past the
        // window waits the longest wait.
        let p = pace.clone();
        let ahead = std::thread::spawn(move || {
            let t = Instant::now();
            for _ in 0..(WINDOW as u32 + 3 * CHECK) {
                p.tick(1);
            }
            t.elapsed()
        });
        let waited = ahead.join().unwrap();
        assert!(waited >= MOST_WAIT, "waited {waited:?}");
        // Once vCPU 0 is in a system call nobody waits for it.
        pace.away(0);
        let t = Instant::now();
        for _ in 0..10 * CHECK {
            pace.tick(1);
        }
        assert!(t.elapsed() < MOST_WAIT, "waited {:?}", t.elapsed());
    }

    #[test]
    fn a_thread_back_from_a_system_call_joins_the_present() {
        let pace = Pace::new();
        pace.thread_started(1, 0);
        pace.away(0);
        for _ in 0..5 * CHECK {
            pace.tick(1);
        }
        assert_eq!(pace.clock(1), 5 * CHECK as u64);
        pace.back(0);
        assert_eq!(pace.clock(0), 5 * CHECK as u64);
    }

    #[test]
    fn a_forked_child_paces_nobody() {
        let pace = Pace::new();
        pace.thread_started(1, 0);
        pace.forked(1);
        assert!(pace.present(1).is_none());
        let t = Instant::now();
        for _ in 0..(WINDOW as u32 * 4) {
            pace.tick(1);
        }
        assert!(t.elapsed() < MOST_WAIT);
    }
}
