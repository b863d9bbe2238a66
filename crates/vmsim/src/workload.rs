//! Built-in workloads that drive the kernel through its syscall surface, as a program
//! would.
//!
//! `server`: a server process maps a shared cache and fills it, keeps private
//! configuration and a heap, writes a status line to the text display, compiles a small
//! JIT stub (written, flipped to read-execute under W^X, then run), and forks workers.
//! The workers run round-robin in time slices: they fetch instructions from the shared
//! text, read the shared cache with a skewed popularity, write private buffers of their
//! own, read the inherited configuration and now and then write into the inherited
//! heap (copy-on-write). The last worker finally follows a null pointer and is killed;
//! the others keep running. Sizes scale with the machine, so the same workload runs on
//! a textbook machine and on x86-64.

use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::{Device, Kernel, MapSource, MmapArgs, Pid, Program, Prot};

/// The server workload's sizes; zero means "scaled to the machine".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerParams {
    /// Pages of the shared cache.
    pub cache_pages: u64,
    /// Pages of each worker's private buffer.
    pub buffer_pages: u64,
    /// Workers.
    pub workers: u64,
}

/// What the workload set up, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLayout {
    /// The server.
    pub server: Pid,
    /// The workers.
    pub workers: Vec<Pid>,
    /// Pages of the shared cache.
    pub cache_pages: u64,
    /// Pages of each worker's private buffer.
    pub buffer_pages: u64,
}

use crate::rng::Rng;

/// Instructions of the JIT stub (x86 `nop; nop; ret`).
const JIT_CODE: [u8; 3] = [0x90, 0x90, 0xc3];

/// Runs the server workload for about `accesses` memory accesses on a booted kernel.
/// Errors from the kernel that a real program would handle (a failed `mmap`) end the
/// setup early; what ran is still reported.
pub fn run_server(k: &mut Kernel, accesses: u64, seed: u64) -> ServerLayout {
    run_server_with(k, accesses, seed, ServerParams::default())
}

/// [`run_server`] with sizes chosen by the caller.
pub fn run_server_with(
    k: &mut Kernel,
    accesses: u64,
    seed: u64,
    params: ServerParams,
) -> ServerLayout {
    let ps = k.page_size();
    let frames = k.frames.nr_frames();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let small = frames < 4096;
    let or = |v: u64, default: u64| if v == 0 { default } else { v };
    let nr_workers = or(params.workers, if small { 2 } else { 4 });
    let cache_pages = or(params.cache_pages, (frames / 32).clamp(2, 1024));
    let buffer_pages = or(params.buffer_pages, (frames / 128).clamp(1, 64));
    let heap_pages = (frames / 256).clamp(1, 64);
    let program = Program {
        name: "server".into(),
        text: if small { 4 * ps } else { 16 * ps },
        data: 2 * ps,
        bss: ps,
    };
    let mut layout = ServerLayout {
        server: Pid(0),
        workers: Vec::new(),
        cache_pages,
        buffer_pages,
    };
    let Ok(server) = k.spawn(&program) else {
        return layout;
    };
    layout.server = server;
    let text = k
        .process(server)
        .and_then(|p| p.mm.as_ref())
        .and_then(|m| m.vmas.iter().next().map(|v| (v.start, v.len())));
    let Some((text_start, text_len)) = text else {
        return layout;
    };
    let Ok(cache) = k.mmap(server, MmapArgs::shared_anon(cache_pages * ps, Prot::RW)) else {
        return layout;
    };
    // Fill the cache: one store per page, the value its index.
    for i in 0..cache_pages {
        let _ = k.write_u64(server, VirtAddr(cache.0 + i * ps), i);
    }
    let Ok(heap) = k.brk(server, None) else {
        return layout;
    };
    if k.brk(server, Some(VirtAddr(heap.0 + heap_pages * ps)))
        .is_err()
    {
        return layout;
    }
    for i in 0..heap_pages {
        let _ = k.write_u64(server, VirtAddr(heap.0 + i * ps), i);
    }
    // The status line on the display, where there is one.
    if k.display().is_some() {
        let screen = MmapArgs {
            shared: true,
            source: MapSource::Device(Device::Display),
            ..MmapArgs::anon(ps, Prot::RW)
        };
        if let Ok(s) = k.mmap(server, screen) {
            let line = format!("vmsim server: {nr_workers} workers, {cache_pages} cache pages");
            let cells: Vec<u8> = line.bytes().flat_map(|c| [c, 0x1f]).collect();
            let _ = k.write(server, s, &cells);
        }
    }
    // The JIT: write the stub into a RW page, flip it to RX, call it.
    if let Ok(jit) = k.mmap(server, MmapArgs::anon(ps, Prot::RW)) {
        let _ = k.write(server, jit, &JIT_CODE);
        if k.mprotect(server, jit, ps, Prot::RX).is_ok() {
            for off in 0..JIT_CODE.len() as u64 {
                let _ = k.access(server, VirtAddr(jit.0 + off), AccessKind::Execute);
            }
        }
    }
    // The workers, each with a private buffer.
    let mut buffers = Vec::new();
    for _ in 0..nr_workers {
        let Ok(w) = k.fork(server) else { break };
        let Ok(buf) = k.mmap(w, MmapArgs::anon(buffer_pages * ps, Prot::RW)) else {
            break;
        };
        layout.workers.push(w);
        buffers.push(buf);
    }
    let stack_top = k
        .process(server)
        .and_then(|p| p.mm.as_ref())
        .map_or(VirtAddr(0), |m| m.stack_top);
    let slice = 1000u64;
    let mut done = 0u64;
    let mut pc = vec![0u64; layout.workers.len()];
    'run: while done < accesses && !layout.workers.is_empty() {
        for (i, &w) in layout.workers.iter().enumerate() {
            let n = slice.min(accesses - done);
            for _ in 0..n {
                let r = rng.below(100);
                let (va, kind) = if r < 25 {
                    // Mostly sequential fetches with the odd jump.
                    pc[i] = if rng.below(16) == 0 {
                        rng.below(text_len)
                    } else {
                        (pc[i] + 4) % text_len
                    };
                    (text_start.0 + pc[i], AccessKind::Execute)
                } else if r < 65 {
                    let page = rng.skewed(cache_pages);
                    (
                        cache.0 + page * ps + rng.below(ps / 8) * 8,
                        AccessKind::Read,
                    )
                } else if r < 85 {
                    let page = rng.below(buffer_pages);
                    (
                        buffers[i].0 + page * ps + rng.below(ps / 8) * 8,
                        AccessKind::Write,
                    )
                } else if r < 95 {
                    // The stack: the top few words.
                    (stack_top.0 - 8 - rng.below(64) * 8, AccessKind::Write)
                } else if r < 98 {
                    (heap.0 + rng.below(heap_pages) * ps, AccessKind::Read)
                } else {
                    (heap.0 + rng.below(heap_pages) * ps, AccessKind::Write)
                };
                let _ = k.access(w, VirtAddr(va), kind);
            }
            done += n;
            if done >= accesses {
                break 'run;
            }
        }
    }
    // The last worker follows a null pointer: SIGSEGV, and the rest run on.
    if let Some(&last) = layout.workers.last() {
        let _ = k.access(last, VirtAddr(0), AccessKind::Read);
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::MachineSpec;
    use crate::os::{FaultClass, KernelConfig, ProcState, Signal};

    #[test]
    fn the_server_workload_shares_copies_and_crashes_one_worker() {
        let config = KernelConfig {
            wx: true,
            ..KernelConfig::default()
        };
        let mut k = Kernel::boot(MachineSpec::preset("x86-64").unwrap(), config);
        let l = run_server(&mut k, 200_000, 1);
        assert_eq!(l.workers.len(), 4);
        assert!(k.counters.faults_in(FaultClass::Minor) > 0);
        assert!(
            k.counters.faults_in(FaultClass::Major) > 0,
            "text read from file"
        );
        assert!(
            k.counters.faults_in(FaultClass::Cow) > 0,
            "heap writes copy"
        );
        let last = *l.workers.last().unwrap();
        assert_eq!(
            k.process(last).unwrap().state,
            ProcState::Killed(Signal::Segv)
        );
        for &w in &l.workers[..3] {
            assert!(k.process(w).unwrap().is_running());
            assert!(k.process(w).unwrap().stats.accesses >= 40_000);
        }
        let screen = k.display().unwrap().screen();
        assert!(screen.starts_with("vmsim server: 4 workers"), "{screen}");
    }

    #[test]
    fn it_runs_on_a_textbook_machine() {
        let mut k = Kernel::boot(
            MachineSpec::preset("textbook").unwrap(),
            KernelConfig::default(),
        );
        let l = run_server(&mut k, 5_000, 3);
        assert_eq!(l.workers.len(), 2);
        assert!(k.machine.mmu.counters.total_translations() >= 5_000);
    }
}
