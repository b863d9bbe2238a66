//! Synthetic workloads: seeded, parameterised generators of trace events.
//!
//! Each workload starts a process (`spawn 1`), maps the memory it uses with `mmap`,
//! makes exactly `accesses` memory accesses, and exits. Data lives in one anonymous
//! region at [`Layout::data_base`]; the recursion workload uses the process's own
//! stack, which grows down from [`Layout::stack_top`]; the fork workload maps a shared
//! region and forks workers that run in turns.

use super::{Access, Event, MapKind, BATCH};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::{Kernel, Prot};
use crate::rng::Rng;
use crate::size::format_size;

/// Where a workload may put things in the address space of the machine it runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Page size.
    pub page_size: u64,
    /// Start of the data region.
    pub data_base: u64,
    /// Bytes available from `data_base`.
    pub data_room: u64,
    /// Top of the process's stack.
    pub stack_top: u64,
    /// Start of the program's text.
    pub text_base: u64,
}

impl Layout {
    /// Where synthetic workloads put things on the machine `k` runs: data a quarter of
    /// the way up user space (at `0x1000000000` on machines with 4 GiB of user space or
    /// more), with the second quarter as its room; the stack at the top of user space;
    /// text at `0x400000` (at the first mappable page on smaller machines).
    pub fn for_kernel(k: &Kernel) -> Layout {
        let top = k.task_size().0;
        let ps = k.page_size();
        let big = top >= 1 << 32;
        let data_base = if big {
            0x10_0000_0000u64.min(top / 4)
        } else {
            (top / 4).div_ceil(ps) * ps
        };
        Layout {
            page_size: ps,
            data_base,
            data_room: top / 2 - data_base.min(top / 2),
            stack_top: top,
            text_base: if big { 0x40_0000 } else { k.mmap_min().0 },
        }
    }
}

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// A sequential scan of 8-byte words, over and over.
    Seq,
    /// Every `stride` bytes, wrapping around the footprint.
    Stride,
    /// Uniformly random 8-byte words.
    Uniform,
    /// Pages drawn Zipf(`alpha`), ranks shuffled; a random word in the page.
    Zipf,
    /// `hot_probability` of accesses go to the first `hot_fraction` of the pages.
    HotCold,
    /// Naive n×n matrix multiply of f64 (i, j, k loops).
    Matmul,
    /// Blocked (tiled) matrix multiply with `block`×`block` tiles.
    MatmulBlocked,
    /// A linked list of 64-byte nodes in random order: built (one store per node),
    /// then followed node to node.
    PointerChase,
    /// Lookups and inserts in an open-addressing hash table of 16-byte slots.
    Hash,
    /// A server maps a shared region and forks `workers` workers that take turns
    /// reading it and writing their inherited heap (copy-on-write).
    Fork,
    /// Recursion `depth` calls deep with `frame`-byte frames on the stack, repeated.
    Recursion,
    /// `workers` threads of one process take turns of `quantum` accesses, each reading
    /// and writing the shared heap with the same skew.
    Threads,
    /// Thread 0 maps 16 pages, writes each and unmaps them, over and over, while the
    /// other `workers - 1` threads read the shared heap: every unmap is a TLB
    /// shootdown to the CPUs running the others.
    Unmap,
    /// A producer thread writes a ring buffer word by word and a consumer thread reads
    /// it behind, spinning on the first word when it has caught up; turns of
    /// `quantum` accesses.
    ProdCons,
}

impl WorkloadKind {
    /// Every workload with its name.
    pub const ALL: [(WorkloadKind, &'static str); 14] = [
        (WorkloadKind::Seq, "seq"),
        (WorkloadKind::Stride, "stride"),
        (WorkloadKind::Uniform, "uniform"),
        (WorkloadKind::Zipf, "zipf"),
        (WorkloadKind::HotCold, "hotcold"),
        (WorkloadKind::Matmul, "matmul"),
        (WorkloadKind::MatmulBlocked, "matmul-blocked"),
        (WorkloadKind::PointerChase, "pointer-chase"),
        (WorkloadKind::Hash, "hash"),
        (WorkloadKind::Fork, "fork"),
        (WorkloadKind::Recursion, "recursion"),
        (WorkloadKind::Threads, "threads"),
        (WorkloadKind::Unmap, "unmap"),
        (WorkloadKind::ProdCons, "prodcons"),
    ];

    /// Whether the workload is one process of several threads.
    pub fn threaded(self) -> bool {
        matches!(
            self,
            WorkloadKind::Threads | WorkloadKind::Unmap | WorkloadKind::ProdCons
        )
    }

    /// The workload called `name`.
    pub fn parse(name: &str) -> Option<WorkloadKind> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, n)| n)
    }
}

/// A workload's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthParams {
    /// Which workload.
    pub kind: WorkloadKind,
    /// Memory accesses to make.
    pub accesses: u64,
    /// Bytes of data (not used by the matrix workloads, sized by `matrix`).
    pub footprint: u64,
    /// Stride in bytes (stride).
    pub stride: u64,
    /// Zipf exponent (zipf).
    pub alpha: f64,
    /// Fraction of the pages that are hot (hotcold).
    pub hot_fraction: f64,
    /// Probability that an access goes to a hot page (hotcold).
    pub hot_probability: f64,
    /// Fraction of accesses that are stores (seq, stride, uniform, zipf, hotcold, hash).
    pub write_ratio: f64,
    /// Matrix order n (matmul).
    pub matrix: u64,
    /// Tile size (matmul-blocked).
    pub block: u64,
    /// Recursion depth (recursion).
    pub depth: u64,
    /// Bytes per stack frame (recursion).
    pub frame: u64,
    /// Workers (fork) or threads (threads, unmap; prodcons always has 2).
    pub workers: u32,
    /// Accesses per turn of a worker or thread (fork, threads, unmap, prodcons).
    pub quantum: u64,
    /// Seed.
    pub seed: u64,
}

impl SynthParams {
    /// Threads of a threaded workload: `workers`, but always 2 for prodcons.
    pub fn threads(&self) -> u32 {
        if self.kind == WorkloadKind::ProdCons {
            2
        } else {
            self.workers
        }
    }

    /// Defaults for `kind`: 1 M accesses over 16 MiB, a quarter of them stores.
    pub fn new(kind: WorkloadKind) -> SynthParams {
        SynthParams {
            kind,
            accesses: 1_000_000,
            footprint: 16 << 20,
            stride: 4096,
            alpha: 0.9,
            hot_fraction: 0.1,
            hot_probability: 0.9,
            write_ratio: 0.25,
            matrix: 256,
            block: 32,
            depth: 1000,
            frame: 256,
            workers: match kind {
                WorkloadKind::Unmap | WorkloadKind::ProdCons => 2,
                _ => 4,
            },
            quantum: 10_000,
            seed: 1,
        }
    }
}

/// Why a workload cannot run on a machine: the parameter at fault, its value and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("workload {workload}: {param} = {value}: {reason}")]
pub struct SynthError {
    /// The workload.
    pub workload: &'static str,
    /// The parameter, as the command line names it (`footprint`, `matrix`, ...).
    pub param: &'static str,
    /// Its value.
    pub value: String,
    /// Why it cannot be.
    pub reason: String,
}

/// Most workers the fork workload takes (its exit events must fit in one batch).
pub const MAX_WORKERS: u32 = 1000;

impl SynthParams {
    fn error(
        &self,
        param: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> SynthError {
        SynthError {
            workload: self.kind.name(),
            param,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Checks every parameter against the ranges it takes and, with checked arithmetic,
    /// against `layout`: the data the workload maps must fit in the room the layout
    /// leaves for it, the recursion's stack between the data and the stack's top. Returns
    /// the bytes of data the workload maps (a whole number of pages; a page for
    /// `recursion`, which maps none). The error names the parameter and its value.
    pub fn validate(&self, layout: &Layout) -> Result<u64, SynthError> {
        let p = self;
        let ps = layout.page_size;
        for (param, v) in [
            ("write-ratio", p.write_ratio),
            ("hot-probability", p.hot_probability),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(p.error(param, v, "must be between 0 and 1"));
            }
        }
        if !(p.hot_fraction > 0.0 && p.hot_fraction <= 1.0) {
            return Err(p.error(
                "hot-fraction",
                p.hot_fraction,
                "must be above 0 and at most 1",
            ));
        }
        if !(p.alpha > 0.0 && p.alpha.is_finite()) {
            return Err(p.error("alpha", p.alpha, "must be positive and finite"));
        }
        if p.stride == 0 {
            return Err(p.error("stride", 0, "must be at least 1 byte"));
        }
        if !(1..=MAX_WORKERS).contains(&p.workers) {
            return Err(p.error(
                "workers",
                p.workers,
                format!("must be between 1 and {MAX_WORKERS}"),
            ));
        }
        if p.quantum == 0 {
            return Err(p.error("quantum", 0, "must be at least 1 access"));
        }
        let (param, value, bytes) = match p.kind {
            WorkloadKind::Matmul | WorkloadKind::MatmulBlocked => {
                if p.matrix == 0 {
                    return Err(p.error("matrix", 0, "the order must be at least 1"));
                }
                if p.kind == WorkloadKind::MatmulBlocked && !(1..=p.matrix).contains(&p.block) {
                    return Err(p.error(
                        "block",
                        p.block,
                        format!(
                            "the tile must be between 1 and the matrix order ({})",
                            p.matrix
                        ),
                    ));
                }
                let bytes = p
                    .matrix
                    .checked_mul(p.matrix)
                    .and_then(|n| n.checked_mul(24))
                    .ok_or_else(|| {
                        p.error(
                            "matrix",
                            p.matrix,
                            "three n×n matrices of 8-byte numbers need more than 2^64 bytes",
                        )
                    })?;
                ("matrix", p.matrix, bytes)
            }
            WorkloadKind::Recursion => {
                if p.depth == 0 {
                    return Err(p.error("depth", 0, "must be at least 1"));
                }
                if p.frame < 8 {
                    return Err(p.error("frame", p.frame, "must be at least 8 bytes"));
                }
                // The deepest store is 64 bytes below the deepest frame, which starts 64
                // bytes below the top.
                let room = layout
                    .stack_top
                    .saturating_sub(layout.data_base.saturating_add(layout.data_room));
                let stack = p
                    .depth
                    .checked_mul(p.frame)
                    .and_then(|b| b.checked_add(128));
                if stack.is_none_or(|b| b > room) {
                    return Err(p.error(
                        "depth",
                        p.depth,
                        format!(
                            "{} frames of {} bytes need more than the {} of stack between the data region and the stack's top",
                            p.depth,
                            p.frame,
                            format_size(room)
                        ),
                    ));
                }
                ("depth", p.depth, ps)
            }
            _ => {
                if p.footprint < 64 {
                    return Err(p.error("footprint", p.footprint, "must be at least 64 bytes"));
                }
                ("footprint", p.footprint, p.footprint)
            }
        };
        let data = bytes.checked_next_multiple_of(ps).ok_or_else(|| {
            p.error(
                param,
                value,
                "rounded up to whole pages it passes 2^64 bytes",
            )
        })?;
        // The fork workload maps a shared region and the server's heap, each `data`.
        // The unmap workload maps and unmaps 16 pages right after it.
        let need = match p.kind {
            WorkloadKind::Fork => data.checked_mul(2),
            WorkloadKind::Unmap => data.checked_add(UNMAP_PAGES * ps),
            _ => Some(data),
        };
        if need.is_none_or(|n| n > layout.data_room) {
            let what = match p.kind {
                WorkloadKind::Fork => format!(
                    "twice {} (the shared region and the heap)",
                    format_size(data)
                ),
                WorkloadKind::Unmap => format!(
                    "{} and the {UNMAP_PAGES} pages mapped and unmapped",
                    format_size(data)
                ),
                _ => format_size(data),
            };
            return Err(p.error(
                param,
                value,
                format!(
                    "{what} of data does not fit in the {} this machine leaves for it",
                    format_size(layout.data_room)
                ),
            ));
        }
        let pages = data / ps;
        match p.kind {
            WorkloadKind::Zipf if pages > 1 << 26 => {
                return Err(p.error(param, value, "zipf takes at most 2^26 pages"))
            }
            WorkloadKind::PointerChase if data / 64 > 1 << 26 => {
                return Err(p.error(param, value, "pointer-chase takes at most 2^26 nodes"))
            }
            WorkloadKind::Fork if p.accesses < pages => {
                return Err(p.error(
                    "accesses",
                    p.accesses,
                    format!("the server writes its {pages} heap pages before it forks: give at least {pages} accesses"),
                ))
            }
            _ => {}
        }
        Ok(data)
    }
}

enum State {
    Simple,
    Zipf {
        /// Ranks drawn by their cumulative weights, in O(1).
        ranks: crate::rng::Inverse,
        perm: Vec<u32>,
    },
    Chase {
        next: Vec<u32>,
        cur: u32,
    },
    Matmul {
        i: u64,
        j: u64,
        k: u64,
        step: u8,
        ii: u64,
        jj: u64,
        kk: u64,
    },
    Fork {
        turn: u32,
        left: u64,
    },
    Recursion {
        level: u64,
        down: bool,
        word: u64,
    },
    Turns {
        tid: u32,
        left: u64,
        /// unmap: the next page of the region to write (0: not mapped).
        page: u64,
        /// prodcons: words written and words read.
        made: u64,
        read: u64,
    },
}

/// Pages the unmap workload maps, writes and unmaps each time (64 KiB of 4 KiB pages).
pub const UNMAP_PAGES: u64 = 16;

/// A workload in progress: hands out its events in batches.
pub struct Generator {
    p: SynthParams,
    layout: Layout,
    rng: Rng,
    state: State,
    prologue: Vec<Event>,
    pro_pos: usize,
    made: u64,
    i: u64,
    done: bool,
    pid: u32,
    words: u64,
}

/// A number in `[0, 1)` from `rng`.
#[inline(always)]
fn unit(rng: &mut Rng) -> f64 {
    (rng.next() >> 11) as f64 / (1u64 << 53) as f64
}

/// A store with probability `write_ratio`, else a load (no draw when it is 0).
#[inline(always)]
fn load_or_store(rng: &mut Rng, write_ratio: f64) -> AccessKind {
    // A table, not a branch: a random choice mispredicts as often as it writes.
    const KINDS: [AccessKind; 2] = [AccessKind::Read, AccessKind::Write];
    if write_ratio > 0.0 {
        KINDS[(unit(rng) < write_ratio) as usize]
    } else {
        AccessKind::Read
    }
}

impl Generator {
    /// A generator of `p` for a machine laid out as `layout`.
    pub fn new(p: SynthParams, layout: Layout) -> Result<Generator, SynthError> {
        let ps = layout.page_size;
        let footprint = p.validate(&layout)?;
        let pages = footprint / ps;
        let words = footprint / 8;
        let mut rng = Rng(p.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let state = match p.kind {
            WorkloadKind::Zipf => {
                let mut cdf = Vec::with_capacity(pages as usize);
                let mut sum = 0.0;
                for r in 1..=pages {
                    sum += 1.0 / (r as f64).powf(p.alpha);
                    cdf.push(sum);
                }
                let mut perm: Vec<u32> = (0..pages as u32).collect();
                for i in (1..perm.len()).rev() {
                    perm.swap(i, rng.below(i as u64 + 1) as usize);
                }
                State::Zipf {
                    ranks: crate::rng::Inverse::new(cdf),
                    perm,
                }
            }
            WorkloadKind::PointerChase => {
                let nodes = footprint / 64;
                // Sattolo's algorithm: one cycle through every node.
                let mut next: Vec<u32> = (0..nodes as u32).collect();
                for i in (1..next.len()).rev() {
                    next.swap(i, rng.below(i as u64) as usize);
                }
                State::Chase { next, cur: 0 }
            }
            WorkloadKind::Matmul | WorkloadKind::MatmulBlocked => State::Matmul {
                i: 0,
                j: 0,
                k: 0,
                step: 0,
                ii: 0,
                jj: 0,
                kk: 0,
            },
            // The first step switches to the first worker (the turn after the last).
            WorkloadKind::Fork => State::Fork {
                turn: p.workers.saturating_sub(1),
                left: 0,
            },
            WorkloadKind::Recursion => State::Recursion {
                level: 0,
                down: true,
                word: 0,
            },
            // The first step switches to thread 0 (the turn after the last).
            k if k.threaded() => State::Turns {
                tid: p.threads().saturating_sub(1),
                left: 0,
                page: 0,
                made: 0,
                read: 0,
            },
            _ => State::Simple,
        };
        let mut prologue = vec![Event::Spawn { pid: 1 }];
        if p.kind != WorkloadKind::Recursion {
            prologue.push(Event::Mmap {
                pid: 1,
                addr: VirtAddr(layout.data_base),
                len: footprint,
                prot: Prot::RW,
                shared: p.kind == WorkloadKind::Fork,
                kind: MapKind::Anon,
            });
        }
        if p.kind == WorkloadKind::Fork {
            // The server's private heap right after the shared region, written once
            // before the fork so every worker inherits it.
            let heap = layout.data_base + footprint;
            prologue.push(Event::Mmap {
                pid: 1,
                addr: VirtAddr(heap),
                len: footprint,
                prot: Prot::RW,
                shared: false,
                kind: MapKind::Anon,
            });
            for page in 0..pages {
                prologue.push(write(1, heap + page * ps));
            }
            for w in 0..p.workers {
                prologue.push(Event::Fork {
                    parent: 1,
                    child: 2 + w,
                });
            }
        }
        let made = prologue
            .iter()
            .filter(|e| matches!(e, Event::Access(_)))
            .count() as u64;
        Ok(Generator {
            p: SynthParams { footprint, ..p },
            layout,
            rng,
            state,
            prologue,
            pro_pos: 0,
            made,
            i: 0,
            done: false,
            pid: 1,
            words,
        })
    }

    /// A generator of `p` for the machine `k` runs, laid out by [`Layout::for_kernel`]:
    /// [`SynthParams::validate`], then the data must fit in what the machine can hold
    /// at once (its free frames and swap slots: [`crate::workload::capacity_pages`]),
    /// and for the fork workload so must the workers: each may copy the whole heap, and
    /// needs a stack page and page tables of its own
    /// ([`crate::workload::worker_pages`]). The error names the parameter.
    pub fn for_kernel(p: SynthParams, k: &Kernel) -> Result<Generator, SynthError> {
        let layout = Layout::for_kernel(k);
        let data = p.validate(&layout)?;
        let have = crate::workload::capacity_pages(k);
        let pages = data / layout.page_size;
        let (param, value) = match p.kind {
            WorkloadKind::Matmul | WorkloadKind::MatmulBlocked => ("matrix", p.matrix),
            _ => ("footprint", p.footprint),
        };
        if p.kind != WorkloadKind::Recursion && pages > have {
            return Err(p.error(
                param,
                value,
                format!(
                    "{} of data is {pages} pages, and this machine holds {have} at once (free frames and swap slots)",
                    format_size(data)
                ),
            ));
        }
        if p.kind == WorkloadKind::Fork {
            // The shared region and the server's heap, then each worker's copy of the
            // heap, its stack page and the tables mapping text, data and stack.
            let per_worker = crate::workload::worker_pages(k, pages, 2 * pages);
            let need = (p.workers as u64)
                .checked_mul(per_worker)
                .and_then(|w| w.checked_add(2 * pages));
            let have = crate::workload::capacity_pages(k);
            if need.is_none_or(|n| n > have) {
                let most = have.saturating_sub(2 * pages) / per_worker.max(1);
                return Err(p.error(
                    "workers",
                    p.workers,
                    format!(
                        "each worker may copy the {}-page heap and needs {} pages with its stack and page tables; this machine holds {have} pages at once (free frames and swap slots) beside the {} shared: at most {most} workers",
                        pages,
                        per_worker,
                        2 * pages
                    ),
                ));
            }
        }
        Generator::new(p, layout)
    }

    fn rw(&mut self) -> AccessKind {
        load_or_store(&mut self.rng, self.p.write_ratio)
    }

    fn unit(&mut self) -> f64 {
        unit(&mut self.rng)
    }

    /// Clears nothing; appends up to [`BATCH`] events to `out` (none at the end).
    pub fn next_batch(&mut self, out: &mut Vec<Event>) {
        while out.len() < BATCH && self.pro_pos < self.prologue.len() {
            out.push(self.prologue[self.pro_pos]);
            self.pro_pos += 1;
        }
        if self.p.kind == WorkloadKind::Seq {
            self.seq_batch(out);
        }
        while out.len() + 4 <= BATCH && self.made < self.p.accesses {
            self.step(out);
        }
        if self.made >= self.p.accesses
            && !self.done
            && out.len() + 2 + self.p.workers as usize <= BATCH
        {
            if self.p.kind == WorkloadKind::Fork {
                for w in 0..self.p.workers {
                    out.push(Event::Exit {
                        pid: 2 + w,
                        code: 0,
                    });
                }
            }
            if self.p.kind.threaded() {
                for tid in 1..self.p.threads() {
                    out.push(Event::ThreadExit {
                        pid: 1,
                        tid,
                        code: 0,
                    });
                }
            }
            out.push(Event::Exit { pid: 1, code: 0 });
            self.done = true;
        }
    }

    /// [`Generator::step`]'s `seq` accesses for the rest of the batch, in a loop that
    /// holds the generator's state in registers: the same accesses, made faster (an
    /// all-hit replay's cost is mostly making them).
    fn seq_batch(&mut self, out: &mut Vec<Event>) {
        let room = BATCH.saturating_sub(out.len() + 3) as u64;
        let n = room.min(self.p.accesses - self.made);
        out.reserve(n as usize);
        let (base, words, ratio, pid) = (
            self.layout.data_base,
            self.words,
            self.p.write_ratio,
            self.pid,
        );
        let mut rng = Rng(self.rng.0);
        let mut i = self.i;
        for _ in 0..n {
            let va = base + i * 8;
            i += 1;
            if i >= words {
                i = 0;
            }
            let kind = load_or_store(&mut rng, ratio);
            out.push(Event::Access(Access {
                pid,
                kind,
                va: VirtAddr(va),
                size: 8,
            }));
        }
        self.rng = rng;
        self.i = i;
        self.made += n;
    }

    fn push(&mut self, out: &mut Vec<Event>, kind: AccessKind, va: u64) {
        out.push(Event::Access(Access {
            pid: self.pid,
            kind,
            va: VirtAddr(va),
            size: 8,
        }));
        self.made += 1;
    }

    fn step(&mut self, out: &mut Vec<Event>) {
        let base = self.layout.data_base;
        let ps = self.layout.page_size;
        let fp = self.p.footprint;
        match self.p.kind {
            WorkloadKind::Seq => {
                // `i` stays below `words`: a wrap, not a division, per access.
                let va = base + self.i * 8;
                self.i += 1;
                if self.i >= self.words {
                    self.i = 0;
                }
                let k = self.rw();
                self.push(out, k, va);
            }
            WorkloadKind::Stride => {
                let va = base + (self.i.wrapping_mul(self.p.stride) % fp) / 8 * 8;
                self.i += 1;
                let k = self.rw();
                self.push(out, k, va);
            }
            WorkloadKind::Uniform => {
                let va = base + self.rng.below(self.words) * 8;
                let k = self.rw();
                self.push(out, k, va);
            }
            WorkloadKind::HotCold => {
                let pages = fp / ps;
                let hot = ((pages as f64 * self.p.hot_fraction) as u64).clamp(1, pages);
                let page = if self.unit() < self.p.hot_probability || hot == pages {
                    self.rng.below(hot)
                } else {
                    hot + self.rng.below(pages - hot)
                };
                let va = base + page * ps + self.rng.below(ps / 8) * 8;
                let k = self.rw();
                self.push(out, k, va);
            }
            WorkloadKind::Zipf => {
                let u = self.unit();
                let page = match &self.state {
                    State::Zipf { ranks, perm } => perm[ranks.index(u)] as u64,
                    _ => 0,
                };
                let va = base + page * ps + self.rng.below(ps / 8) * 8;
                let k = self.rw();
                self.push(out, k, va);
            }
            WorkloadKind::PointerChase if self.i < fp / 64 => {
                // First the list is built: each node's link written in address order.
                let va = base + self.i * 64;
                self.i += 1;
                self.push(out, AccessKind::Write, va);
            }
            WorkloadKind::PointerChase => {
                let node = match &mut self.state {
                    State::Chase { next, cur } => {
                        let n = *cur;
                        *cur = next[n as usize];
                        n as u64
                    }
                    _ => 0,
                };
                self.push(out, AccessKind::Read, base + node * 64);
            }
            WorkloadKind::Hash => {
                let slots = fp / 16;
                let key = self.rng.next();
                let mut slot = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) % slots;
                // Linear probing: one to three slots, then a store on an insert.
                let probes = 1 + (key >> 60) % 3;
                for _ in 0..probes {
                    self.push(out, AccessKind::Read, base + slot * 16);
                    slot = (slot + 1) % slots;
                }
                if self.unit() < self.p.write_ratio {
                    self.push(out, AccessKind::Write, base + slot * 16 + 8);
                }
            }
            WorkloadKind::Matmul | WorkloadKind::MatmulBlocked => self.matmul(out),
            WorkloadKind::Fork => {
                if let State::Fork { turn, left } = &mut self.state {
                    if *left == 0 {
                        *turn = (*turn + 1) % self.p.workers;
                        *left = self.p.quantum;
                        out.push(Event::Switch { pid: 2 + *turn });
                    }
                    *left -= 1;
                    self.pid = 2 + *turn;
                }
                // Workers read the shared region (skewed) and write their heap copy.
                let pages = fp / ps;
                if self.unit() < self.p.write_ratio {
                    let va = base + fp + self.rng.below(pages) * ps + self.rng.below(ps / 8) * 8;
                    self.push(out, AccessKind::Write, va);
                } else {
                    let va = base + self.rng.skewed(pages) * ps + self.rng.below(ps / 8) * 8;
                    self.push(out, AccessKind::Read, va);
                }
            }
            WorkloadKind::Recursion => self.recursion(out),
            WorkloadKind::Threads | WorkloadKind::Unmap | WorkloadKind::ProdCons => {
                self.threaded(out)
            }
        }
    }

    /// One access of a threaded workload, after the switch to the next thread when
    /// the turn is over.
    fn threaded(&mut self, out: &mut Vec<Event>) {
        let (base, ps, fp) = (
            self.layout.data_base,
            self.layout.page_size,
            self.p.footprint,
        );
        let (workers, quantum, kind) = (self.p.threads(), self.p.quantum, self.p.kind);
        let State::Turns { tid, left, .. } = &mut self.state else {
            return;
        };
        if *left == 0 {
            *tid = (*tid + 1) % workers;
            *left = quantum;
            out.push(Event::Thread { pid: 1, tid: *tid });
        }
        *left -= 1;
        let me = *tid;
        let pages = fp / ps;
        match kind {
            WorkloadKind::Unmap if me == 0 => {
                let region = base + fp;
                let len = UNMAP_PAGES * ps;
                let State::Turns { page, .. } = &mut self.state else {
                    return;
                };
                let at = *page;
                *page = (at + 1) % UNMAP_PAGES;
                if at == 0 {
                    out.push(Event::Mmap {
                        pid: 1,
                        addr: VirtAddr(region),
                        len,
                        prot: Prot::RW,
                        shared: false,
                        kind: MapKind::Anon,
                    });
                }
                self.push(out, AccessKind::Write, region + at * ps);
                if at + 1 == UNMAP_PAGES {
                    out.push(Event::Munmap {
                        pid: 1,
                        addr: VirtAddr(region),
                        len,
                    });
                }
            }
            WorkloadKind::ProdCons => {
                let words = self.words;
                let State::Turns { made, read, .. } = &mut self.state else {
                    return;
                };
                if me == 0 {
                    let va = base + (*made % words) * 8;
                    *made += 1;
                    self.push(out, AccessKind::Write, va);
                } else if *read < *made {
                    let va = base + (*read % words) * 8;
                    *read += 1;
                    self.push(out, AccessKind::Read, va);
                } else {
                    // Caught up: spin on the ring's first word.
                    self.push(out, AccessKind::Read, base);
                }
            }
            WorkloadKind::Unmap => {
                let va = base + self.rng.skewed(pages) * ps + self.rng.below(ps / 8) * 8;
                self.push(out, AccessKind::Read, va);
            }
            _ => {
                let va = base + self.rng.skewed(pages) * ps + self.rng.below(ps / 8) * 8;
                let k = self.rw();
                self.push(out, k, va);
            }
        }
    }

    fn matmul(&mut self, out: &mut Vec<Event>) {
        let n = self.p.matrix;
        let b = if self.p.kind == WorkloadKind::MatmulBlocked {
            self.p.block
        } else {
            n
        };
        let base = self.layout.data_base;
        let (a, bm, c) = (base, base + n * n * 8, base + 2 * n * n * 8);
        let State::Matmul {
            i,
            j,
            k,
            step,
            ii,
            jj,
            kk,
        } = &mut self.state
        else {
            return;
        };
        let (va, kind) = match *step {
            0 => (a + (*i * n + *k) * 8, AccessKind::Read),
            1 => (bm + (*k * n + *j) * 8, AccessKind::Read),
            _ => (c + (*i * n + *j) * 8, AccessKind::Write),
        };
        // Advance: k inside the tile, then the store of C[i][j], then j, i, and the
        // tiles kk, jj, ii.
        *step += 1;
        if *step == 2 {
            *k += 1;
            if *k < (*kk + b).min(n) {
                *step = 0;
            }
        } else if *step == 3 {
            *step = 0;
            *k = *kk;
            *j += 1;
            if *j >= (*jj + b).min(n) {
                *j = *jj;
                *i += 1;
                if *i >= (*ii + b).min(n) {
                    *i = *ii;
                    *kk += b;
                    if *kk >= n {
                        *kk = 0;
                        *jj += b;
                        if *jj >= n {
                            *jj = 0;
                            *ii += b;
                            if *ii >= n {
                                *ii = 0;
                            }
                        }
                    }
                    *i = *ii;
                    *j = *jj;
                    *k = *kk;
                }
            }
        }
        self.push(out, kind, va);
    }

    fn recursion(&mut self, out: &mut Vec<Event>) {
        let top = self.layout.stack_top;
        let frame = self.p.frame;
        let text = self.layout.text_base;
        let State::Recursion { level, down, word } = &mut self.state else {
            return;
        };
        let sp = top - 64 - *level * frame;
        let (kind, va) = if *down {
            // A call: fetch the function, push the return address, write the locals.
            let r = match *word {
                0 => (AccessKind::Execute, text),
                1 => (AccessKind::Write, sp - 8),
                w => (AccessKind::Write, sp - 8 - 8 * (w - 1)),
            };
            *word += 1;
            if *word >= 2 + (frame / 8 - 1).min(7) {
                *word = 0;
                *level += 1;
                if *level >= self.p.depth {
                    *down = false;
                }
            }
            r
        } else {
            // A return: read the return address.
            *level -= 1;
            if *level == 0 {
                *down = true;
            }
            (AccessKind::Read, top - 64 - *level * frame - 8)
        };
        self.push(out, kind, va);
    }
}

fn write(pid: u32, va: u64) -> Event {
    Event::Access(Access {
        pid,
        kind: AccessKind::Write,
        va: VirtAddr(va),
        size: 8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::VirtAddr;

    fn layout() -> Layout {
        Layout {
            page_size: 4096,
            data_base: 0x10_0000_0000,
            data_room: 1 << 40,
            stack_top: 0x7fff_ffff_f000,
            text_base: 0x40_0000,
        }
    }

    fn all(p: SynthParams) -> Vec<Event> {
        let mut g = Generator::new(p, layout()).unwrap();
        let all = crate::trace::read_batches(|b| {
            g.next_batch(b);
            Ok(())
        });
        all.unwrap()
    }

    fn accesses(ev: &[Event]) -> Vec<Access> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Access(a) => Some(*a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_workload_makes_exactly_its_accesses_inside_its_memory_and_repeats_for_a_seed() {
        for (kind, name) in WorkloadKind::ALL {
            let mut p = SynthParams::new(kind);
            p.accesses = 20_000;
            p.footprint = 1 << 20;
            p.matrix = 40;
            p.block = 8;
            p.depth = 50;
            let ev = all(p);
            let acc = accesses(&ev);
            assert_eq!(acc.len(), 20_000, "{name}");
            assert_eq!(ev, all(p), "{name} is not deterministic");
            assert!(
                matches!(ev.last(), Some(Event::Exit { pid: 1, .. })),
                "{name}"
            );
            let l = layout();
            for a in &acc {
                let in_data =
                    a.va >= VirtAddr(l.data_base) && a.va < VirtAddr(l.data_base + (8 << 20));
                let in_stack =
                    a.va < VirtAddr(l.stack_top) && a.va > VirtAddr(l.stack_top - (1 << 20));
                let in_text = a.va == VirtAddr(l.text_base);
                assert!(in_data || in_stack || in_text, "{name}: {a:?}");
            }
            let mut q = p;
            q.seed = 2;
            if !matches!(
                kind,
                WorkloadKind::Seq
                    | WorkloadKind::Stride
                    | WorkloadKind::Matmul
                    | WorkloadKind::MatmulBlocked
                    | WorkloadKind::Recursion
                    | WorkloadKind::ProdCons
            ) {
                assert_ne!(accesses(&all(q)), acc, "{name} ignores its seed");
            }
        }
    }

    #[test]
    fn matmul_touches_every_element_in_the_textbook_order() {
        let mut p = SynthParams::new(WorkloadKind::Matmul);
        p.matrix = 3;
        p.accesses = 3 * 3 * (2 * 3 + 1);
        let acc = accesses(&all(p));
        let base = layout().data_base;
        // C[0][0] = sum over k of A[0][k] * B[k][0], then the store.
        let first: Vec<u64> = acc[..7].iter().map(|a| (a.va.0 - base) / 8).collect();
        assert_eq!(first, vec![0, 9, 1, 12, 2, 15, 18]);
        let mut blocked = p;
        blocked.kind = WorkloadKind::MatmulBlocked;
        blocked.block = 2;
        // Each C element is stored once per k tile: 27 × 2 loads + 9 × 2 stores.
        blocked.accesses = 72;
        // Same set of (A, B, C) touches, in a different order.
        let mut a: Vec<u64> = acc.iter().map(|a| a.va.0).collect();
        let mut b: Vec<u64> = accesses(&all(blocked)).iter().map(|a| a.va.0).collect();
        assert_ne!(a, b);
        a.sort_unstable();
        b.sort_unstable();
        let dedup = |mut v: Vec<u64>| {
            v.dedup();
            v
        };
        assert_eq!(dedup(a), dedup(b));
    }

    #[test]
    fn the_fork_workload_switches_to_each_worker_before_it_runs() {
        let mut p = SynthParams::new(WorkloadKind::Fork);
        p.footprint = 64 << 10;
        p.workers = 2;
        p.accesses = 25_000;
        let ev = all(p);
        let last_fork = ev
            .iter()
            .rposition(|e| matches!(e, Event::Fork { .. }))
            .unwrap();
        assert_eq!(ev[last_fork + 1], Event::Switch { pid: 2 });
        // Every worker access follows a switch to that worker.
        let mut running = 1;
        for e in &ev[last_fork + 1..] {
            match e {
                Event::Switch { pid } => running = *pid,
                Event::Access(a) => assert_eq!(a.pid, running, "{e:?}"),
                _ => {}
            }
        }
        assert!(ev.contains(&Event::Switch { pid: 3 }));
    }

    #[test]
    fn threads_take_turns_of_a_quantum_and_the_unmapper_writes_what_it_mapped() {
        let mut p = SynthParams::new(WorkloadKind::Unmap);
        p.footprint = 1 << 20;
        p.quantum = 100;
        p.accesses = 10_000;
        let ev = all(p);
        let region = layout().data_base + p.footprint;
        let (mut tid, mut in_turn, mut mapped) = (None, 0, false);
        let (mut maps, mut unmaps) = (0, 0);
        for e in &ev {
            match *e {
                Event::Thread { pid: 1, tid: t } => {
                    assert_ne!(Some(t), tid, "a turn goes to the other thread");
                    assert!(tid.is_none() || in_turn == 100, "a full quantum: {in_turn}");
                    (tid, in_turn) = (Some(t), 0);
                }
                // The data's own mapping comes before the first turn.
                Event::Mmap { addr, len, .. } if tid.is_some() => {
                    assert_eq!((addr.0, len), (region, UNMAP_PAGES * 4096));
                    assert!(!mapped && tid == Some(0));
                    (mapped, maps) = (true, maps + 1);
                }
                Event::Munmap { addr, .. } => {
                    assert!(mapped && tid == Some(0) && addr.0 == region);
                    (mapped, unmaps) = (false, unmaps + 1);
                }
                Event::Access(a) => {
                    in_turn += 1;
                    let in_region = (region..region + UNMAP_PAGES * 4096).contains(&a.va.0);
                    // Thread 0 writes only the region it mapped; the others read the data.
                    assert_eq!(in_region, tid == Some(0), "{a:?}");
                    assert!(!in_region || (mapped && a.kind == AccessKind::Write));
                }
                _ => {}
            }
        }
        // Half the accesses are thread 0's, 16 per cycle.
        assert_eq!(maps, 5_000 / UNMAP_PAGES as usize + 1);
        assert_eq!(unmaps, 5_000 / UNMAP_PAGES as usize);
        assert!(ev.contains(&Event::ThreadExit {
            pid: 1,
            tid: 1,
            code: 0
        }));
    }

    #[test]
    fn the_consumer_reads_only_what_the_producer_wrote() {
        let mut p = SynthParams::new(WorkloadKind::ProdCons);
        p.footprint = 4096;
        p.quantum = 700;
        p.accesses = 20_000;
        let base = layout().data_base;
        let (mut tid, mut written, mut read) = (0, 0u64, 0u64);
        for e in all(p) {
            match e {
                Event::Thread { tid: t, .. } => tid = t,
                Event::Access(a) if tid == 0 => {
                    assert_eq!(a.va.0, base + written % 512 * 8);
                    written += 1;
                }
                Event::Access(a) if a.va.0 == base + read % 512 * 8 && read < written => {
                    read += 1;
                }
                // Caught up: spinning on the first word.
                Event::Access(a) => assert!(read == written && a.va.0 == base, "{a:?}"),
                _ => {}
            }
        }
        // 14 rounds of two turns, then the producer's last 400 accesses.
        assert_eq!((written, read), (10_200, 9_800));
    }

    #[test]
    fn pointer_chase_visits_every_node_once_per_lap() {
        let mut p = SynthParams::new(WorkloadKind::PointerChase);
        p.footprint = 64 * 1024;
        p.accesses = 2048;
        let acc = accesses(&all(p));
        assert!(acc[..1024].iter().all(|a| a.kind == AccessKind::Write));
        let mut v: Vec<u64> = acc[1024..].iter().map(|a| a.va.0).collect();
        assert!(
            v.windows(2).any(|w| w[1] != w[0] + 64),
            "not in address order"
        );
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 1024);
    }

    #[test]
    fn a_footprint_too_big_for_the_machine_is_an_error() {
        let mut p = SynthParams::new(WorkloadKind::Uniform);
        p.footprint = 2 << 40;
        let e = Generator::new(p, layout()).err().unwrap().to_string();
        assert_eq!(
            e,
            "workload uniform: footprint = 2199023255552: 2 TiB of data does not fit in the 1 TiB this machine leaves for it"
        );
    }

    #[test]
    fn every_parameter_is_checked_and_named() {
        use WorkloadKind::*;
        let l = layout();
        type Edit = fn(&mut SynthParams);
        let cases: &[(WorkloadKind, Edit, &str, &str)] = &[
            (
                Matmul,
                |p| p.matrix = 1 << 32,
                "matrix = 4294967296",
                "more than 2^64 bytes",
            ),
            (
                Matmul,
                |p| p.matrix = 1 << 19,
                "matrix = 524288",
                "does not fit",
            ),
            (Matmul, |p| p.matrix = 0, "matrix = 0", "at least 1"),
            (MatmulBlocked, |p| p.block = 0, "block = 0", "between 1 and"),
            (
                MatmulBlocked,
                |p| p.block = 300,
                "block = 300",
                "between 1 and",
            ),
            (
                Uniform,
                |p| p.footprint = u64::MAX,
                "footprint = 18446744073709551615",
                "passes 2^64",
            ),
            (
                Seq,
                |p| p.footprint = 2 << 40,
                "footprint = 2199023255552",
                "does not fit",
            ),
            (Hash, |p| p.footprint = 63, "footprint = 63", "at least 64"),
            (Zipf, |p| p.footprint = 1 << 39, "footprint", "2^26 pages"),
            (
                PointerChase,
                |p| p.footprint = 1 << 33,
                "footprint",
                "2^26 nodes",
            ),
            (Fork, |p| p.footprint = 600 << 30, "footprint", "twice"),
            (Stride, |p| p.stride = 0, "stride = 0", "at least 1"),
            (Zipf, |p| p.alpha = f64::NAN, "alpha = NaN", "positive"),
            (Zipf, |p| p.alpha = 0.0, "alpha = 0", "positive"),
            (
                HotCold,
                |p| p.hot_fraction = 0.0,
                "hot-fraction = 0",
                "above 0",
            ),
            (
                HotCold,
                |p| p.hot_probability = 1.5,
                "hot-probability = 1.5",
                "between 0 and 1",
            ),
            (
                Seq,
                |p| p.write_ratio = -0.1,
                "write-ratio = -0.1",
                "between 0 and 1",
            ),
            (Fork, |p| p.workers = 0, "workers = 0", "between 1 and 1000"),
            (
                Fork,
                |p| p.workers = 100_000,
                "workers = 100000",
                "between 1 and 1000",
            ),
            (
                Fork,
                |p| p.accesses = 4095,
                "accesses = 4095",
                "4096 heap pages",
            ),
            (Recursion, |p| p.depth = 0, "depth = 0", "at least 1"),
            (Recursion, |p| p.frame = 7, "frame = 7", "at least 8"),
            (
                Recursion,
                |p| p.depth = u64::MAX,
                "depth = 18446744073709551615",
                "of stack",
            ),
            (
                Recursion,
                |p| p.depth = 1 << 40,
                "depth = 1099511627776",
                "of stack",
            ),
        ];
        for (kind, edit, named, why) in cases {
            let mut p = SynthParams::new(*kind);
            edit(&mut p);
            let e = Generator::new(p, l)
                .err()
                .unwrap_or_else(|| panic!("{kind:?} {named} was accepted"));
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("workload {}: {named}", kind.name()))
                    && text.contains(why),
                "{text}"
            );
        }
        // At the limits, the parameters are accepted.
        for (kind, edit) in [
            (Matmul, (|p: &mut SynthParams| p.matrix = 1 << 17) as Edit),
            (MatmulBlocked, |p| p.block = 256),
            (Seq, |p| p.footprint = 1 << 40),
            (Fork, |p| p.workers = 1000),
            (Fork, |p| p.accesses = 4096),
            (HotCold, |p| p.hot_fraction = 1.0),
            (Recursion, |p| p.depth = 1 << 20),
        ] {
            let mut p = SynthParams::new(kind);
            edit(&mut p);
            assert!(Generator::new(p, l).is_ok(), "{kind:?}");
        }
    }

    #[test]
    fn every_workload_makes_exactly_the_accesses_asked_for() {
        // (hash ends on a whole lookup, up to three accesses past the count: left as
        // it is, so its runs keep their counts.)
        for (kind, name) in WorkloadKind::ALL {
            if kind == WorkloadKind::Hash {
                continue;
            }
            for n in [0u64, 1, 2, 3, 5, 4095, 4096, 4097] {
                let mut p = SynthParams::new(kind);
                p.accesses = n.max(if kind == WorkloadKind::Fork { 16 } else { 0 });
                p.footprint = 64 << 10;
                p.matrix = 8;
                p.block = 3;
                p.depth = 20;
                assert_eq!(accesses(&all(p)).len() as u64, p.accesses, "{name} -n {n}");
            }
        }
    }

    #[test]
    fn the_fork_workload_takes_the_workers_the_machine_can_hold() {
        use crate::hw::MachineSpec;
        use crate::os::KernelConfig;
        let spec = MachineSpec::preset("x86-64")
            .unwrap()
            .with_ram(64 << 20, "test")
            .unwrap();
        let k = Kernel::boot(spec, KernelConfig::default());
        let mut p = SynthParams::new(WorkloadKind::Fork);
        p.footprint = 1 << 20;
        p.workers = 40;
        assert!(Generator::for_kernel(p, &k).is_ok());
        p.workers = 100;
        let e = Generator::for_kernel(p, &k).err().unwrap().to_string();
        assert!(
            e.starts_with("workload fork: workers = 100: each worker may copy the 256-page heap"),
            "{e}"
        );
        let most = crate::workload::test_util::most_allowed(&e);
        assert!((40..100).contains(&most), "{e}");
        p.workers = most as u32;
        assert!(Generator::for_kernel(p, &k).is_ok());
        p.workers = most as u32 + 1;
        assert!(Generator::for_kernel(p, &k).is_err());
        // Data the machine cannot hold at all, with or without its swap.
        let mut big = SynthParams::new(WorkloadKind::Uniform);
        big.footprint = 128 << 20;
        let e = Generator::for_kernel(big, &k).err().unwrap().to_string();
        assert!(e.starts_with("workload uniform: footprint = 134217728: 128 MiB of data is 32768 pages, and this machine holds"), "{e}");
        big.footprint = 32 << 20;
        assert!(Generator::for_kernel(big, &k).is_ok());
        let swapped = Kernel::boot(
            MachineSpec::preset("x86-64")
                .unwrap()
                .with_ram(64 << 20, "test")
                .unwrap(),
            KernelConfig {
                swap_bytes: 256 << 20,
                ..KernelConfig::default()
            },
        );
        big.footprint = 128 << 20;
        assert!(
            Generator::for_kernel(big, &swapped).is_ok(),
            "with swap it fits"
        );
        // The layout is the one `vmsim run` has always used.
        assert_eq!(
            Layout::for_kernel(&k),
            Layout {
                page_size: 4096,
                data_base: 0x10_0000_0000,
                data_room: (0x7fff_ffff_f000u64 / 2) - 0x10_0000_0000,
                stack_top: 0x7fff_ffff_f000,
                text_base: 0x40_0000,
            }
        );
    }
}
