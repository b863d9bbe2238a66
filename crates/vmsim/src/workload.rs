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
use crate::size::format_size;

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

/// Why the server workload cannot run as asked: the parameter (`cache`, `buffer`,
/// `workers`, or `ram` when the machine cannot even start the server), its value and
/// why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("server workload: {param} = {value}: {reason}")]
pub struct ServerError {
    /// The parameter, as the command line names it.
    pub param: &'static str,
    /// Its value.
    pub value: String,
    /// Why it cannot be.
    pub reason: String,
}

fn server_error(
    param: &'static str,
    value: impl ToString,
    reason: impl Into<String>,
) -> ServerError {
    ServerError {
        param,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The sizes a server workload runs with on a machine: the parameters with the scaled
/// defaults filled in, checked against what the machine can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSizes {
    /// Pages of the shared cache.
    pub cache_pages: u64,
    /// Pages of each worker's private buffer.
    pub buffer_pages: u64,
    /// Pages of the server's heap (inherited by the workers).
    pub heap_pages: u64,
    /// Workers.
    pub workers: u64,
    /// Whether the machine is small (fewer than 4096 frames): a smaller program.
    pub small: bool,
}

/// Pages the machine `k` can hold at once: its free frames and free swap slots.
pub fn capacity_pages(k: &Kernel) -> u64 {
    let swap = k.swap_stats().map_or(0, |s| s.slots.saturating_sub(s.used));
    k.frames().nr_free().saturating_add(swap)
}

/// Pages a worker process may hold at once: its `private` pages, a stack page, and
/// the page tables (never swapped) that map its text, data and stack, `mapped` pages in
/// all.
pub fn worker_pages(k: &Kernel, private: u64, mapped: u64) -> u64 {
    let p = k.machine().spec.paging;
    let tables = p.table_frames(p.levels)
        + 3 * (p.levels as u64).saturating_sub(1)
        + mapped.div_ceil(p.entries(1).max(1));
    private.saturating_add(1).saturating_add(tables)
}

impl ServerParams {
    /// Sizes in bytes and a count, as the command line gives them (`None`: scaled to
    /// the machine); sizes are rounded up to whole pages of `page_size`. An explicit
    /// zero (or a size whose rounding passes 2^64) is refused, naming `cache`,
    /// `buffer` or `workers`: nothing is silently made one page.
    pub fn from_bytes(
        cache: Option<u64>,
        buffer: Option<u64>,
        workers: Option<u64>,
        page_size: u64,
    ) -> Result<ServerParams, ServerError> {
        let pages = |param: &'static str, what: &str, v: Option<u64>| match v {
            None => Ok(0),
            Some(0) => Err(server_error(
                param,
                0,
                format!("{what} needs at least one page"),
            )),
            Some(b) => b
                .checked_next_multiple_of(page_size.max(1))
                .map(|r| r / page_size.max(1))
                .ok_or_else(|| {
                    server_error(param, b, "rounded up to whole pages it passes 2^64 bytes")
                }),
        };
        Ok(ServerParams {
            cache_pages: pages("cache", "the shared cache", cache)?,
            buffer_pages: pages("buffer", "each worker's buffer", buffer)?,
            workers: match workers {
                Some(0) => {
                    return Err(server_error(
                        "workers",
                        0,
                        "the server needs at least one worker",
                    ))
                }
                w => w.unwrap_or(0),
            },
        })
    }

    /// The sizes on machine `k`: zeros scaled to the machine, then checked against what
    /// it can hold at once ([`capacity_pages`]: free frames and swap slots). The shared
    /// cache and the heap must fit; then every worker with its buffer, a stack page and
    /// its page tables ([`worker_pages`]). The error names the first parameter that
    /// does not fit and says how much does.
    pub fn resolve(&self, k: &Kernel) -> Result<ServerSizes, ServerError> {
        let frames = k.frames().nr_frames();
        let small = frames < 4096;
        let or = |v: u64, default: u64| if v == 0 { default } else { v };
        let sizes = ServerSizes {
            cache_pages: or(self.cache_pages, (frames / 32).clamp(2, 1024)),
            buffer_pages: or(self.buffer_pages, (frames / 128).clamp(1, 64)),
            heap_pages: (frames / 256).clamp(1, 64),
            workers: or(self.workers, if small { 2 } else { 4 }),
            small,
        };
        let ps = k.page_size();
        let have = capacity_pages(k);
        let text = if small { 4 } else { 16 };
        // The server: its text, data, bss, stack, heap, cache, display and JIT pages.
        let server = sizes
            .cache_pages
            .saturating_add(sizes.heap_pages)
            .saturating_add(text + 8);
        if server > have {
            return Err(server_error(
                "cache",
                format_size(sizes.cache_pages.saturating_mul(ps)),
                format!(
                    "the server's cache and heap need {server} pages and this machine holds {have} at once (free frames and swap slots)"
                ),
            ));
        }
        let mapped = sizes
            .cache_pages
            .saturating_add(sizes.buffer_pages)
            .saturating_add(sizes.heap_pages)
            .saturating_add(text + 8);
        let per_worker = worker_pages(k, sizes.buffer_pages, mapped);
        let left = have - server;
        if per_worker > left {
            return Err(server_error(
                "buffer",
                format_size(sizes.buffer_pages.saturating_mul(ps)),
                format!(
                    "a worker with this buffer needs {per_worker} pages and this machine holds {left} beside the server's"
                ),
            ));
        }
        if sizes
            .workers
            .checked_mul(per_worker)
            .is_none_or(|n| n > left)
        {
            return Err(server_error(
                "workers",
                sizes.workers,
                format!(
                    "each worker needs {per_worker} pages (its buffer, a stack page and its page tables) and this machine holds {left} beside the server's: at most {} workers",
                    left / per_worker
                ),
            ));
        }
        Ok(sizes)
    }
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

/// [`run_server`] with sizes chosen by the caller. Sizes that
/// [`ServerParams::resolve`] refuses run nothing (no server, no workers): call
/// [`try_run_server_with`] to learn why. A setup step the kernel refuses ends the setup
/// early and what ran is reported.
pub fn run_server_with(
    k: &mut Kernel,
    accesses: u64,
    seed: u64,
    params: ServerParams,
) -> ServerLayout {
    match params.resolve(k) {
        Ok(sizes) => match run_sized(k, accesses, seed, sizes, false) {
            Ok(l) | Err((l, _)) => l,
        },
        Err(_) => ServerLayout {
            server: Pid(0),
            workers: Vec::new(),
            cache_pages: params.cache_pages,
            buffer_pages: params.buffer_pages,
        },
    }
}

/// [`run_server_with`], checked: sizes the machine cannot hold
/// ([`ServerParams::resolve`]) and any setup step the kernel refuses (the cache's or a
/// buffer's `mmap`, a `fork`) are errors naming the parameter, so the workload runs as
/// asked or not at all.
pub fn try_run_server_with(
    k: &mut Kernel,
    accesses: u64,
    seed: u64,
    params: ServerParams,
) -> Result<ServerLayout, ServerError> {
    let sizes = params.resolve(k)?;
    run_sized(k, accesses, seed, sizes, true).map_err(|(_, e)| e)
}

/// Runs the server with `sizes`. A refused setup step returns what was set up and the
/// error when `strict`; otherwise the run goes on with what was set up.
fn run_sized(
    k: &mut Kernel,
    accesses: u64,
    seed: u64,
    sizes: ServerSizes,
    strict: bool,
) -> Result<ServerLayout, (ServerLayout, ServerError)> {
    let ps = k.page_size();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let small = sizes.small;
    let nr_workers = sizes.workers;
    let cache_pages = sizes.cache_pages;
    let buffer_pages = sizes.buffer_pages;
    let heap_pages = sizes.heap_pages;
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
    // The end of the setup at a refused step: an error when strict.
    let stop = |layout: ServerLayout, param: &'static str, value: String, why: String| {
        let e = server_error(param, value, why);
        Err((layout, e))
    };
    let server = match k.spawn(&program) {
        Ok(s) => s,
        Err(e) if strict => {
            return stop(
                layout,
                "ram",
                format_size(k.frames().nr_frames() * ps),
                format!("the kernel could not start the server ({e})"),
            )
        }
        Err(_) => return Ok(layout),
    };
    layout.server = server;
    let text = k
        .process(server)
        .and_then(|p| p.mm.as_ref())
        .and_then(|m| m.vmas.iter().next().map(|v| (v.start, v.len())));
    let Some((text_start, text_len)) = text else {
        return Ok(layout);
    };
    let cache = match k.mmap(server, MmapArgs::shared_anon(cache_pages * ps, Prot::RW)) {
        Ok(c) => c,
        Err(e) if strict => {
            let v = format_size(cache_pages * ps);
            return stop(
                layout,
                "cache",
                v,
                format!("the kernel refused the cache's mapping ({e})"),
            );
        }
        Err(_) => return Ok(layout),
    };
    // Fill the cache: one store per page, the value its index.
    for i in 0..cache_pages {
        let _ = k.write_u64(server, VirtAddr(cache.0 + i * ps), i);
    }
    let heap = match k.brk(server, None).and_then(|h| {
        k.brk(server, Some(VirtAddr(h.0 + heap_pages * ps)))
            .map(|_| h)
    }) {
        Ok(h) => h,
        Err(e) if strict => {
            let v = format_size(k.frames().nr_frames() * ps);
            return stop(
                layout,
                "ram",
                v,
                format!("the kernel refused the server's heap ({e})"),
            );
        }
        Err(_) => return Ok(layout),
    };
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
    for n in 0..nr_workers {
        let w = match k.fork(server) {
            Ok(w) => w,
            Err(e) if strict => {
                let why = format!("the kernel refused fork number {} ({e})", n + 1);
                return stop(layout, "workers", nr_workers.to_string(), why);
            }
            Err(_) => break,
        };
        let buf = match k.mmap(w, MmapArgs::anon(buffer_pages * ps, Prot::RW)) {
            Ok(b) => b,
            Err(e) if strict => {
                let v = format_size(buffer_pages * ps);
                let why = format!("the kernel refused worker {}'s buffer ({e})", n + 1);
                return stop(layout, "buffer", v, why);
            }
            Err(_) => break,
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
    Ok(layout)
}

/// Helpers for the tests of the workloads here and in [`crate::trace::synth`].
#[cfg(test)]
pub(crate) mod test_util {
    /// The number a refusal gives after its last `at most `: the largest value allowed.
    pub(crate) fn most_allowed(e: &str) -> u64 {
        let after = e.rsplit("at most ").next().unwrap();
        after.split(' ').next().unwrap().parse().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::most_allowed;
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
        assert!(k.counters().faults_in(FaultClass::Minor) > 0);
        assert!(
            k.counters().faults_in(FaultClass::Major) > 0,
            "text read from file"
        );
        assert!(
            k.counters().faults_in(FaultClass::Cow) > 0,
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
        assert!(k.machine().mmu.counters.total_translations() >= 5_000);
    }

    #[test]
    fn server_sizes_are_checked_and_named() {
        let ps = 4096;
        for (cache, buffer, workers, named) in [
            (Some(0), None, None, "cache = 0"),
            (None, Some(0), None, "buffer = 0"),
            (None, None, Some(0), "workers = 0"),
            (Some(u64::MAX), None, None, "cache = 18446744073709551615"),
        ] {
            let e = ServerParams::from_bytes(cache, buffer, workers, ps).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("server workload: {named}: ")),
                "{e}"
            );
        }
        let p = ServerParams::from_bytes(Some(6000), Some(1), Some(3), ps).unwrap();
        assert_eq!(
            p,
            ServerParams {
                cache_pages: 2,
                buffer_pages: 1,
                workers: 3
            }
        );
        let k = Kernel::boot(
            MachineSpec::preset("x86-64").unwrap(),
            KernelConfig::default(),
        );
        let resolve = |cache: Option<u64>, buffer: Option<u64>, workers: Option<u64>| {
            ServerParams::from_bytes(cache, buffer, workers, ps)
                .unwrap()
                .resolve(&k)
                .map_err(|e| e.to_string())
        };
        let e = resolve(None, Some(1 << 40), None).unwrap_err();
        assert!(
            e.starts_with("server workload: buffer = 1 TiB: a worker with this buffer needs"),
            "{e}"
        );
        let e = resolve(Some(1 << 40), None, None).unwrap_err();
        assert!(e.starts_with("server workload: cache = 1 TiB: "), "{e}");
        let e = resolve(None, None, Some(100_000)).unwrap_err();
        assert!(
            e.starts_with("server workload: workers = 100000: each worker needs"),
            "{e}"
        );
        let most = most_allowed(&e);
        assert!((1000..100_000).contains(&most), "{e}");
        assert_eq!(resolve(None, None, Some(most)).unwrap().workers, most);
        assert!(resolve(None, None, Some(most + 1)).is_err());
        // The defaults, as the workload has always scaled them.
        let d = resolve(None, None, None).unwrap();
        assert_eq!(
            (d.cache_pages, d.buffer_pages, d.heap_pages, d.workers),
            (1024, 64, 64, 4)
        );
    }

    #[test]
    fn refused_sizes_run_nothing_and_checked_runs_match_the_lenient_ones() {
        let boot = || {
            Kernel::boot(
                MachineSpec::preset("x86-64").unwrap(),
                KernelConfig::default(),
            )
        };
        let too_many = ServerParams {
            workers: 100_000,
            ..ServerParams::default()
        };
        let mut k = boot();
        let started = std::time::Instant::now();
        let l = run_server_with(&mut k, 1000, 1, too_many);
        assert!(l.workers.is_empty() && k.processes().is_empty());
        let e = try_run_server_with(&mut k, 1000, 1, too_many).unwrap_err();
        assert_eq!(e.param, "workers");
        assert!(started.elapsed().as_secs() < 2);
        let (mut a, mut b) = (boot(), boot());
        let la = run_server_with(&mut a, 20_000, 5, ServerParams::default());
        let lb = try_run_server_with(&mut b, 20_000, 5, ServerParams::default()).unwrap();
        assert_eq!(la, lb);
        assert_eq!(a.counters(), b.counters());
        // A setup step the kernel refuses is an error naming its parameter: here the
        // strict commit limit refuses the buffers.
        let mut k = Kernel::boot(
            MachineSpec::preset("x86-64")
                .unwrap()
                .with_ram(64 << 20, "t")
                .unwrap(),
            KernelConfig {
                overcommit: crate::os::Overcommit::Never,
                ..KernelConfig::default()
            },
        );
        let big = ServerParams {
            buffer_pages: 5000,
            workers: 2,
            ..ServerParams::default()
        };
        let e = try_run_server_with(&mut k, 1000, 1, big).unwrap_err();
        assert_eq!(e.param, "buffer", "{e}");
        assert!(e.reason.contains("ENOMEM"), "{e}");
    }
}
