//! Synthetic workloads: seeded, parameterised generators of trace events.
//!
//! Each workload starts a process (`spawn 1`), maps the memory it uses with `mmap`,
//! makes exactly `accesses` memory accesses, and exits. Data lives in one anonymous
//! region at [`Layout::data_base`]; the recursion workload uses the process's own
//! stack, which grows down from [`Layout::stack_top`]; the fork workload maps a shared
//! region and forks workers that run in turns.

use super::{Access, Event, MapKind, BATCH};
use crate::hw::AccessKind;
use crate::os::Prot;
use crate::rng::Rng;

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
}

impl WorkloadKind {
    /// Every workload with its name.
    pub const ALL: [(WorkloadKind, &'static str); 11] = [
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
    ];

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
    /// Workers (fork).
    pub workers: u32,
    /// Seed.
    pub seed: u64,
}

impl SynthParams {
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
            workers: 4,
            seed: 1,
        }
    }
}

/// Why a workload cannot run on a machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("workload {workload}: {reason}")]
pub struct SynthError {
    /// The workload.
    pub workload: &'static str,
    /// Why.
    pub reason: String,
}

enum State {
    Simple,
    Zipf {
        cdf: Vec<f64>,
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
}

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

fn check(p: &SynthParams, what: &str, ok: bool) -> Result<(), SynthError> {
    if ok {
        Ok(())
    } else {
        Err(SynthError {
            workload: p.kind.name(),
            reason: what.to_string(),
        })
    }
}

const SLICE: u64 = 10_000;

impl Generator {
    /// A generator of `p` for a machine laid out as `layout`.
    pub fn new(p: SynthParams, layout: Layout) -> Result<Generator, SynthError> {
        let ps = layout.page_size;
        let footprint = match p.kind {
            WorkloadKind::Matmul | WorkloadKind::MatmulBlocked => {
                check(&p, "the matrix order must be at least 1", p.matrix >= 1)?;
                check(
                    &p,
                    "the tile must be between 1 and the matrix order",
                    p.kind == WorkloadKind::Matmul || (1..=p.matrix).contains(&p.block),
                )?;
                p.matrix
                    .checked_mul(p.matrix)
                    .and_then(|n| n.checked_mul(24))
                    .unwrap_or(u64::MAX)
            }
            WorkloadKind::Recursion => {
                check(
                    &p,
                    "depth and frame must be at least 1 and 8 bytes",
                    p.depth >= 1 && p.frame >= 8,
                )?;
                ps
            }
            _ => p.footprint,
        };
        check(
            &p,
            "the footprint must be at least 64 bytes",
            footprint >= 64,
        )?;
        let footprint = footprint.div_ceil(ps) * ps;
        check(
            &p,
            &format!(
                "{footprint} bytes of data do not fit in the {} bytes this machine leaves for them",
                layout.data_room
            ),
            footprint <= layout.data_room,
        )?;
        check(&p, "the stride must be at least 1", p.stride >= 1)?;
        check(
            &p,
            "ratios and fractions must be between 0 and 1",
            [p.write_ratio, p.hot_fraction, p.hot_probability]
                .iter()
                .all(|r| (0.0..=1.0).contains(r)),
        )?;
        check(
            &p,
            "alpha must be positive and finite",
            p.alpha > 0.0 && p.alpha.is_finite(),
        )?;
        check(
            &p,
            "workers must be between 1 and 1000",
            (1..=1000).contains(&p.workers),
        )?;
        let pages = footprint / ps;
        let words = footprint / 8;
        let mut rng = Rng(p.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let state = match p.kind {
            WorkloadKind::Zipf => {
                check(&p, "zipf takes at most 2^26 pages", pages <= 1 << 26)?;
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
                State::Zipf { cdf, perm }
            }
            WorkloadKind::PointerChase => {
                let nodes = footprint / 64;
                check(
                    &p,
                    "pointer-chase takes at most 2^26 nodes",
                    nodes <= 1 << 26,
                )?;
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
            _ => State::Simple,
        };
        let mut prologue = vec![Event::Spawn { pid: 1 }];
        if p.kind != WorkloadKind::Recursion {
            prologue.push(Event::Mmap {
                pid: 1,
                addr: layout.data_base,
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
            check(
                &p,
                "the heap does not fit",
                footprint.saturating_mul(2) <= layout.data_room,
            )?;
            prologue.push(Event::Mmap {
                pid: 1,
                addr: heap,
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

    fn rw(&mut self) -> AccessKind {
        if self.p.write_ratio > 0.0 && self.unit() < self.p.write_ratio {
            AccessKind::Write
        } else {
            AccessKind::Read
        }
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Clears nothing; appends up to [`BATCH`] events to `out` (none at the end).
    pub fn next_batch(&mut self, out: &mut Vec<Event>) {
        while out.len() < BATCH && self.pro_pos < self.prologue.len() {
            out.push(self.prologue[self.pro_pos]);
            self.pro_pos += 1;
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
            out.push(Event::Exit { pid: 1, code: 0 });
            self.done = true;
        }
    }

    fn push(&mut self, out: &mut Vec<Event>, kind: AccessKind, va: u64) {
        out.push(Event::Access(Access {
            pid: self.pid,
            kind,
            va,
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
                let va = base + (self.i % self.words) * 8;
                self.i += 1;
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
                    State::Zipf { cdf, perm } => {
                        let x = u * cdf.last().copied().unwrap_or(1.0);
                        perm[cdf.partition_point(|&c| c < x).min(perm.len() - 1)] as u64
                    }
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
                        *left = SLICE;
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
        va,
        size: 8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut v = Vec::new();
        loop {
            let mut b = Vec::new();
            g.next_batch(&mut b);
            if b.is_empty() {
                return v;
            }
            v.extend(b);
        }
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
                let in_data = a.va >= l.data_base && a.va < l.data_base + (8 << 20);
                let in_stack = a.va < l.stack_top && a.va > l.stack_top - (1 << 20);
                let in_text = a.va == l.text_base;
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
        let first: Vec<u64> = acc[..7].iter().map(|a| (a.va - base) / 8).collect();
        assert_eq!(first, vec![0, 9, 1, 12, 2, 15, 18]);
        let mut blocked = p;
        blocked.kind = WorkloadKind::MatmulBlocked;
        blocked.block = 2;
        // Each C element is stored once per k tile: 27 × 2 loads + 9 × 2 stores.
        blocked.accesses = 72;
        // Same set of (A, B, C) touches, in a different order.
        let mut a: Vec<u64> = acc.iter().map(|a| a.va).collect();
        let mut b: Vec<u64> = accesses(&all(blocked)).iter().map(|a| a.va).collect();
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
    fn pointer_chase_visits_every_node_once_per_lap() {
        let mut p = SynthParams::new(WorkloadKind::PointerChase);
        p.footprint = 64 * 1024;
        p.accesses = 2048;
        let acc = accesses(&all(p));
        assert!(acc[..1024].iter().all(|a| a.kind == AccessKind::Write));
        let mut v: Vec<u64> = acc[1024..].iter().map(|a| a.va).collect();
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
        assert!(e.contains("uniform") && e.contains("do not fit"), "{e}");
    }
}
