//! The scheduler: which CPU each thread runs on, which address space each CPU has
//! loaded, and lazy-TLB mode.
//!
//! A trace is one serial order of execution, so the scheduler never decides who runs
//! next: it places threads. A thread is placed when it first runs, on the CPU with the
//! fewest live threads (the lowest-numbered on a tie), and stays there until it exits
//! (affinity; no migration). Each CPU's running thread is the one of its threads that
//! ran last; when another of its threads runs, the CPU makes a context switch, and
//! loads that thread's address space if it is another process's. The threads of a
//! process share its address space, so on a CPU switching between them loads nothing.
//!
//! A CPU whose running thread exits idles in lazy-TLB mode, as Linux's idle task and
//! kernel threads do: it keeps the address space loaded (its TLB may still hold the
//! address space's entries), a shootdown that frees no page tables skips it, and one
//! that does makes it load the kernel's tables (`leave_mm`).
//!
//! On a machine of one CPU every thread is on CPU 0 and a context switch between
//! processes is what it always was.

use super::{Errno, Kernel, Pid};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// What one CPU did, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    /// Threads placed on it.
    pub threads: u64,
    /// Times another thread (or the first) took it.
    pub context_switches: u64,
    /// TLB shootdown interrupts it received (`nr_tlb_remote_flush_received`, and
    /// /proc/interrupts' `TLB` row).
    pub shootdowns_received: u64,
    /// TLB shootdowns it sent (`nr_tlb_remote_flush`).
    pub shootdowns_sent: u64,
}

/// One CPU as the scheduler sees it.
#[derive(Clone, Debug, Default)]
pub(super) struct Cpu {
    /// The address space loaded while the CPU is not the running one (the running
    /// CPU's is `Tasks::current`).
    pub(super) parked_mm: Option<Pid>,
    /// The thread it runs; `None` when idle (lazy TLB if an address space is loaded).
    pub(super) thread: Option<(Pid, u32)>,
    /// Its counters.
    pub(super) stats: CpuStats,
}

/// Where threads run.
#[derive(Clone, Debug)]
pub(super) struct Sched {
    /// The CPUs, by number.
    pub(super) cpus: Vec<Cpu>,
    /// The CPU of every live thread.
    place: FxHashMap<(Pid, u32), usize>,
    /// The thread of each process that runs now (the trace's last `thread` event for
    /// it; thread 0 before any).
    current_tid: FxHashMap<Pid, u32>,
}

impl Sched {
    /// A scheduler for `cpus` idle CPUs.
    pub(super) fn new(cpus: usize) -> Sched {
        Sched {
            cpus: vec![Cpu::default(); cpus.max(1)],
            place: FxHashMap::default(),
            current_tid: FxHashMap::default(),
        }
    }

    /// The CPU of thread `tid` of `pid`, placing it on the least-loaded CPU if it has
    /// none yet.
    fn cpu_of(&mut self, pid: Pid, tid: u32) -> usize {
        if let Some(&c) = self.place.get(&(pid, tid)) {
            return c;
        }
        // Placement is rare (a thread's first run): count the live threads per CPU.
        let mut live = vec![0u32; self.cpus.len()];
        for &p in self.place.values() {
            live[p] += 1;
        }
        let c = (0..live.len()).min_by_key(|&c| (live[c], c)).unwrap_or(0);
        self.place.insert((pid, tid), c);
        self.cpus[c].stats.threads += 1;
        c
    }

    /// Forgets thread `tid` of `pid`: its CPU idles if it was running it.
    fn remove(&mut self, pid: Pid, tid: u32) {
        if let Some(c) = self.place.remove(&(pid, tid)) {
            let cpu = &mut self.cpus[c];
            if cpu.thread == Some((pid, tid)) {
                cpu.thread = None;
            }
        }
    }

    /// Forgets every thread of `pid` but `keep`.
    fn remove_all_but(&mut self, pid: Pid, keep: Option<u32>) {
        let tids: Vec<u32> = self
            .place
            .keys()
            .filter(|&&(p, t)| p == pid && Some(t) != keep)
            .map(|&(_, t)| t)
            .collect();
        for t in tids {
            self.remove(pid, t);
        }
    }
}

impl Kernel {
    /// How many CPUs the machine has.
    pub fn nr_cpus(&self) -> usize {
        self.sched.cpus.len()
    }

    /// What each CPU did, by CPU number.
    pub fn cpu_stats(&self) -> Vec<CpuStats> {
        self.sched.cpus.iter().map(|c| c.stats).collect()
    }

    /// How many of `pid`'s threads are live (placed on a CPU).
    pub fn threads_of(&self, pid: Pid) -> usize {
        self.sched.place.keys().filter(|&&(p, _)| p == pid).count()
    }

    /// The CPU thread `tid` of `pid` is placed on, if it is live.
    pub fn cpu_of_thread(&self, pid: Pid, tid: u32) -> Option<usize> {
        self.sched.place.get(&(pid, tid)).copied()
    }

    /// The address space loaded on CPU `cpu` (the kernel's own when `None`).
    pub(super) fn loaded_on(&self, cpu: usize) -> Option<Pid> {
        if cpu == self.machine.cpu() {
            self.tasks.current
        } else {
            self.sched.cpus.get(cpu).and_then(|c| c.parked_mm)
        }
    }

    /// Thread `tid` of `pid` runs now: it is placed if new, its CPU becomes the
    /// running one, and that CPU switches to it (loading `pid`'s address space if
    /// another is loaded there).
    pub fn run_thread(&mut self, pid: Pid, tid: u32) -> Result<(), Errno> {
        if !self.process(pid).is_some_and(|p| p.is_running()) {
            return Err(Errno::ESRCH);
        }
        self.sched.current_tid.insert(pid, tid);
        let new = !self.sched.place.contains_key(&(pid, tid));
        let r = if self.nr_cpus() == 1 && self.tasks.current != Some(pid) {
            // One CPU: the process's next access switches to it, as it always has.
            self.sched.cpu_of(pid, tid);
            Ok(())
        } else {
            self.switch_to(pid)
        };
        if new {
            self.refresh_kmem(pid);
        }
        r
    }

    /// Thread `tid` of `pid` exits: its CPU idles (lazy TLB) if it was running it.
    pub fn thread_exit(&mut self, pid: Pid, tid: u32) {
        self.sched.remove(pid, tid);
        self.refresh_kmem(pid);
        if self.sched.current_tid.get(&pid) == Some(&tid) {
            // The process runs on in another of its threads (the lowest-numbered), until
            // the trace says which.
            let next = self
                .sched
                .place
                .keys()
                .filter(|&&(p, _)| p == pid)
                .map(|&(_, t)| t)
                .min();
            match next {
                Some(t) => self.sched.current_tid.insert(pid, t),
                None => self.sched.current_tid.remove(&pid),
            };
        }
    }

    /// Makes `pid`'s running thread run: its CPU becomes the running one and loads
    /// `pid`'s address space there (see [`Kernel::load_mm`]).
    pub fn switch_to(&mut self, pid: Pid) -> Result<(), Errno> {
        if !self.process(pid).is_some_and(|p| p.is_running()) {
            return Err(Errno::ESRCH);
        }
        let tid = self.sched.current_tid.get(&pid).copied().unwrap_or(0);
        let c = self.sched.cpu_of(pid, tid);
        self.run_on(c);
        let cpu = &mut self.sched.cpus[c];
        if cpu.thread != Some((pid, tid)) {
            cpu.thread = Some((pid, tid));
            cpu.stats.context_switches += 1;
        }
        self.load_mm(pid)
    }

    /// Every parked CPU with `pid`'s address space loaded loads the kernel's tables
    /// instead: the address space is going.
    pub(super) fn unload_everywhere(&mut self, pid: Pid) {
        for c in 0..self.nr_cpus() {
            if c != self.machine.cpu() && self.sched.cpus[c].parked_mm == Some(pid) {
                self.unload(c);
            }
        }
    }

    /// Parked CPU `cpu` loads the kernel's tables (Linux's `leave_mm`).
    pub(super) fn unload(&mut self, cpu: usize) {
        self.sched.cpus[cpu].parked_mm = None;
        let root = self.space.pt.root();
        // ASID 0 fits every width: this cannot fail.
        let ok = self.machine.mmu_of_mut(cpu).set_context(root, 0);
        debug_assert!(ok.is_ok(), "ASID 0 refused");
    }

    /// Makes `cpu` the running CPU, parking the one that was.
    fn run_on(&mut self, cpu: usize) {
        let from = self.machine.cpu();
        if cpu == from {
            return;
        }
        self.clock_switch(from, cpu);
        self.sched.cpus[from].parked_mm = self.tasks.current;
        self.machine.run_on(cpu);
        self.tasks.current = self.sched.cpus[cpu].parked_mm.take();
    }

    /// `pid` is gone (exit) or keeps one thread (exec, which makes the calling thread
    /// the process's only one, numbered 0, on the CPU it ran on).
    pub(super) fn sched_forget(&mut self, pid: Pid, exec: bool) {
        if !exec {
            self.sched.remove_all_but(pid, None);
            self.sched.current_tid.remove(&pid);
            return;
        }
        let tid = self.sched.current_tid.get(&pid).copied().unwrap_or(0);
        let cpu = self.sched.place.get(&(pid, tid)).copied();
        self.sched.remove_all_but(pid, Some(tid));
        if let Some(c) = cpu {
            self.sched.remove(pid, tid);
            self.sched.place.insert((pid, 0), c);
            self.sched.cpus[c].thread = Some((pid, 0));
        }
        self.sched.current_tid.insert(pid, 0);
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

    #[test]
    fn threads_go_to_the_least_loaded_cpu_and_stay() {
        let (mut k, pid) = booted_cpus(2);
        k.run_thread(pid, 0).unwrap();
        k.run_thread(pid, 1).unwrap();
        k.run_thread(pid, 2).unwrap();
        assert_eq!(k.cpu_of_thread(pid, 0), Some(0));
        assert_eq!(k.cpu_of_thread(pid, 1), Some(1));
        assert_eq!(k.cpu_of_thread(pid, 2), Some(0));
        assert_eq!(k.machine().cpu(), 0);
        k.run_thread(pid, 1).unwrap();
        assert_eq!(k.machine().cpu(), 1);
        // One address space on both CPUs, loaded once on each.
        assert_eq!(k.loaded_on(0), Some(pid));
        assert_eq!(k.loaded_on(1), Some(pid));
        k.thread_exit(pid, 1);
        assert_eq!(k.cpu_of_thread(pid, 1), None);
        // CPU 1 idles with the address space still loaded (lazy TLB).
        assert_eq!(k.loaded_on(1), Some(pid));
        assert_eq!(k.sched.cpus[1].thread, None);
        let s = k.cpu_stats();
        assert_eq!((s[0].threads, s[1].threads), (2, 1));
        // Thread 1 was still CPU 1's running thread when it ran again: no switch.
        assert_eq!((s[0].context_switches, s[1].context_switches), (2, 1));
    }

    #[test]
    fn exit_and_exec_leave_no_cpu_with_the_old_tables() {
        for preset in ["x86-64", "sv39"] {
            let spec = MachineSpec::preset(preset)
                .unwrap()
                .with_cpus(2, "test")
                .unwrap();
            let mut k = Kernel::boot(spec, KernelConfig::default());
            let pid = spawn(&mut k);
            for tid in [0, 1] {
                k.run_thread(pid, tid).unwrap();
            }
            let old_root = k.process(pid).unwrap().mm.as_ref().unwrap().pt.root();
            // Thread 1 execs on CPU 1: thread 0's CPU keeps nothing of the old image.
            k.exec(pid, &Program::small("new", k.page_size())).unwrap();
            assert_eq!(k.loaded_on(0), None, "{preset}");
            assert_eq!(k.machine().mmu_of(0).context().0, k.space.pt.root());
            assert_eq!(
                k.cpu_of_thread(pid, 0),
                Some(1),
                "{preset}: the caller is thread 0"
            );
            let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
            k.write_u64(pid, a, 7).unwrap();
            let root = k.process(pid).unwrap().mm.as_ref().unwrap().pt.root();
            assert_ne!(root, old_root);
            assert_eq!(k.machine().mmu.context().0, root, "{preset}");
            // A second process on CPU 0, then the first exits from CPU 1.
            let other = spawn(&mut k);
            k.run_thread(other, 0).unwrap();
            k.run_thread(pid, 0).unwrap();
            k.exit(pid, 0).unwrap();
            assert!((0..2).all(|c| k.loaded_on(c) != Some(pid)), "{preset}");
        }
    }

    #[test]
    fn an_exited_thread_hands_its_process_to_another_and_is_never_placed_again() {
        let (mut k, pid) = booted_cpus(2);
        k.run_thread(pid, 0).unwrap();
        k.run_thread(pid, 1).unwrap();
        k.thread_exit(pid, 1);
        // A call of the process (no thread event) runs on thread 0's CPU.
        k.switch_to(pid).unwrap();
        assert_eq!(k.machine().cpu(), 0);
        assert_eq!(k.cpu_of_thread(pid, 1), None);
        assert_eq!(k.cpu_stats().iter().map(|s| s.threads).sum::<u64>(), 2);
        // A process that has ended is no one's to run.
        k.exit(pid, 0).unwrap();
        assert_eq!(k.switch_to(pid), Err(Errno::ESRCH));
        assert_eq!(k.cpu_of_thread(pid, 0), None);
        assert_eq!(k.cpu_stats().iter().map(|s| s.threads).sum::<u64>(), 2);
    }

    #[test]
    fn one_cpu_places_every_thread_on_it() {
        let (mut k, pid) = booted_cpus(1);
        let switches = k.counters().switches;
        for t in 0..4 {
            k.run_thread(pid, t).unwrap();
        }
        assert_eq!(k.machine().cpu(), 0);
        assert!(k.counters().switches <= switches + 1);
    }
}
