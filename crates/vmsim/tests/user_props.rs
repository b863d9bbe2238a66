//! Property tests of user space (allocators and collectors running inside a simulated
//! process), each against a plain reference model:
//!
//! - allocators: live blocks never overlap, keep their bytes (written and read back
//!   through the MMU), and freed memory is reused; the heap's own walk agrees with
//!   the live set;
//! - collectors: after a collection exactly the objects the model says survive are
//!   left (for tracing collectors the reachable ones; for reference counting the
//!   reachable ones and whatever unreachable cycles keep alive), and every root and
//!   field still leads to the same logical object, however the objects moved;
//!
//! plus the same trace through every allocator, checking the differences the
//! documentation claims.
//!
//! Running out of memory is checked too: a collector may answer `OutOfMemory` only
//! when, by the model's own count, the live objects and the new one cannot fit (the
//! heap then holds exactly the survivors), so a collector that never frees fails.

mod support;
use support::boot;

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use vmsim::addr::VirtAddr;
use vmsim::user::alloc::{AllocConfig, AllocError, AllocatorKind, Heap};
use vmsim::user::gc::{object_size, CollectorKind, GcConfig, GcError, GcHeap, GRANULE};
use vmsim::user::workload::{alloc_trace, run_alloc_trace, AllocParams, AllocPattern, TraceOp};

// ---- Allocators ----

#[derive(Clone, Debug)]
enum AOp {
    Malloc(u64),
    Calloc(u64),
    Free(usize),
    Realloc(usize, u64),
    /// Free a block and at once ask for the same size: the heap must not grow.
    FreeThenMalloc(usize),
    DoubleFree(usize),
    InvalidFree(usize, u64),
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..200u64,
        3 => 200..3000u64,
        1 => 3000..40_000u64,
        1 => 100_000..300_000u64, // around the mmap threshold
    ]
}

fn aop() -> impl Strategy<Value = AOp> {
    prop_oneof![
        6 => size().prop_map(AOp::Malloc),
        1 => size().prop_map(AOp::Calloc),
        4 => any::<usize>().prop_map(AOp::Free),
        2 => (any::<usize>(), size()).prop_map(|(i, s)| AOp::Realloc(i, s)),
        2 => any::<usize>().prop_map(AOp::FreeThenMalloc),
        1 => any::<usize>().prop_map(AOp::DoubleFree),
        1 => (any::<usize>(), 1..16u64).prop_map(|(i, d)| AOp::InvalidFree(i, d)),
    ]
}

/// A live block in the model: where, how big, and the byte it was filled with.
#[derive(Clone, Copy, Debug)]
struct Block {
    p: u64,
    size: u64,
    fill: u8,
}

fn fill(h: &mut Heap<'_>, b: Block) {
    h.mem().fill(b.p, b.size, b.fill).unwrap();
}

fn check_bytes(h: &mut Heap<'_>, b: &Block, upto: u64) -> Result<(), TestCaseError> {
    let mut buf = vec![0u8; upto as usize];
    h.mem().read(b.p, &mut buf).unwrap();
    prop_assert!(
        buf.iter().all(|&x| x == b.fill),
        "block {:#x}+{} lost its bytes",
        b.p,
        b.size
    );
    Ok(())
}

fn check_disjoint(live: &[Block], new: &Block) -> Result<(), TestCaseError> {
    prop_assert_eq!(new.p % 16, 0, "alignment");
    for b in live {
        let (a0, a1) = (b.p, b.p + b.size.max(1));
        let (b0, b1) = (new.p, new.p + new.size.max(1));
        prop_assert!(a1 <= b0 || b1 <= a0, "{:x?} overlaps {:x?}", b, new);
    }
    Ok(())
}

fn run_alloc_ops(kind: AllocatorKind, ops: &[AOp]) -> Result<(), TestCaseError> {
    let (mut k, pid) = boot();
    let mut h = Heap::new(&mut k, pid, kind, AllocConfig::default()).unwrap();
    let mut live: Vec<Block> = Vec::new();
    let mut freed: Vec<u64> = Vec::new();
    let mut next_fill = 1u8;
    let mut fill_byte = || {
        next_fill = next_fill.wrapping_add(37) | 1;
        next_fill
    };
    for op in ops {
        match *op {
            AOp::Malloc(size) | AOp::Calloc(size) => {
                let p = if matches!(op, AOp::Calloc(_)) {
                    let p = h.calloc(1, size).unwrap();
                    let b = Block {
                        p: p.0,
                        size,
                        fill: 0,
                    };
                    check_bytes(&mut h, &b, size)?;
                    p
                } else {
                    h.malloc(size).unwrap()
                };
                let b = Block {
                    p: p.0,
                    size,
                    fill: fill_byte(),
                };
                check_disjoint(&live, &b)?;
                fill(&mut h, b);
                live.push(b);
            }
            AOp::Free(i) if !live.is_empty() => {
                let b = live.swap_remove(i % live.len());
                check_bytes(&mut h, &b, b.size)?;
                h.free(VirtAddr(b.p)).unwrap();
                freed.push(b.p);
            }
            AOp::Realloc(i, size) if !live.is_empty() => {
                let i = i % live.len();
                let b = live.swap_remove(i);
                let p = h.realloc(VirtAddr(b.p), size).unwrap();
                if size == 0 {
                    prop_assert_eq!(p, VirtAddr(0));
                    freed.push(b.p);
                    continue;
                }
                let moved = Block {
                    p: p.0,
                    size,
                    fill: b.fill,
                };
                check_bytes(&mut h, &moved, b.size.min(size))?;
                check_disjoint(&live, &moved)?;
                let nb = Block {
                    fill: fill_byte(),
                    ..moved
                };
                fill(&mut h, nb);
                live.push(nb);
            }
            AOp::FreeThenMalloc(i) if !live.is_empty() => {
                let b = live.swap_remove(i % live.len());
                let before = h.stats().heap_bytes;
                h.free(VirtAddr(b.p)).unwrap();
                let p = h.malloc(b.size).unwrap();
                prop_assert!(
                    h.stats().heap_bytes <= before,
                    "{}: freed {} bytes were not reused: heap {} -> {}",
                    kind,
                    b.size,
                    before,
                    h.stats().heap_bytes
                );
                let nb = Block {
                    p: p.0,
                    size: b.size,
                    fill: fill_byte(),
                };
                check_disjoint(&live, &nb)?;
                fill(&mut h, nb);
                live.push(nb);
            }
            AOp::DoubleFree(i) if !freed.is_empty() => {
                let p = freed[i % freed.len()];
                if live.iter().all(|b| b.p != p) {
                    let e = h.free(VirtAddr(p)).unwrap_err();
                    prop_assert_eq!(e, AllocError::DoubleFree { addr: VirtAddr(p) });
                }
            }
            AOp::InvalidFree(i, d) if !live.is_empty() => {
                let p = live[i % live.len()].p + d;
                let e = h.free(VirtAddr(p)).unwrap_err();
                prop_assert_eq!(e, AllocError::InvalidFree { addr: VirtAddr(p) });
            }
            _ => {}
        }
    }
    for b in &live {
        check_bytes(&mut h, b, b.size)?;
    }
    let mut want: Vec<(VirtAddr, u64)> = live.iter().map(|b| (VirtAddr(b.p), b.size)).collect();
    want.sort_unstable();
    prop_assert_eq!(h.live_blocks(), want);
    // The heap's headers agree: every allocated block of the brk heap holds one live
    // block, and the blocks tile the heap.
    let blocks = h.heap_blocks().unwrap();
    let total: u64 = blocks.iter().map(|b| b.1).sum();
    prop_assert!(total <= h.brk_bytes());
    let in_brk = live
        .iter()
        .filter(|b| {
            blocks
                .iter()
                .any(|&(s, n, a)| a && s.0 <= b.p && b.p < s.0 + n)
        })
        .count();
    prop_assert_eq!(in_brk, blocks.iter().filter(|b| b.2).count());
    let live_bytes: u64 = live.iter().map(|b| b.size).sum();
    prop_assert_eq!(h.stats().live_bytes, live_bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn allocators_keep_blocks_disjoint_and_intact(
        kind in 0..AllocatorKind::ALL.len(),
        ops in prop::collection::vec(aop(), 1..80),
    ) {
        run_alloc_ops(AllocatorKind::ALL[kind], &ops)?;
    }
}

// ---- Collectors ----

const ROOTS: usize = 6;

#[derive(Clone, Debug)]
enum GOp {
    Alloc {
        root: usize,
        nfields: u64,
        data: u64,
    },
    SetRoot {
        dst: usize,
        src: Option<usize>,
    },
    LoadField {
        dst: usize,
        src: usize,
        field: u64,
    },
    StoreField {
        obj: usize,
        field: u64,
        value: Option<usize>,
    },
    Collect,
}

fn gop() -> impl Strategy<Value = GOp> {
    let r = 0..ROOTS;
    prop_oneof![
        4 => (r.clone(), 0..4u64, 8..48u64)
            .prop_map(|(root, nfields, data)| GOp::Alloc { root, nfields, data }),
        2 => (r.clone(), prop::option::weighted(0.8, r.clone()))
            .prop_map(|(dst, src)| GOp::SetRoot { dst, src }),
        3 => (r.clone(), r.clone(), 0..4u64)
            .prop_map(|(dst, src, field)| GOp::LoadField { dst, src, field }),
        5 => (r.clone(), 0..4u64, prop::option::weighted(0.85, r.clone()))
            .prop_map(|(obj, field, value)| GOp::StoreField { obj, field, value }),
        1 => Just(GOp::Collect),
    ]
}

/// The reference model: logical objects by number, their fields, and the roots.
#[derive(Default, Debug)]
struct Graph {
    nodes: BTreeMap<u64, (Vec<Option<u64>>, u64)>,
    roots: [Option<u64>; ROOTS],
    next: u64,
}

impl Graph {
    fn reachable(&self) -> BTreeSet<u64> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<u64> = self.roots.iter().flatten().copied().collect();
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(self.nodes[&n].0.iter().flatten());
            }
        }
        seen
    }

    /// What reference counting keeps: the largest set in which every object is
    /// referenced by a root or by a member (reachable objects, unreachable cycles and
    /// what they point to).
    fn counted(&self) -> BTreeSet<u64> {
        let mut keep: BTreeSet<u64> = self.nodes.keys().copied().collect();
        loop {
            let mut referenced: BTreeSet<u64> = self.roots.iter().flatten().copied().collect();
            for n in &keep {
                referenced.extend(self.nodes[n].0.iter().flatten());
            }
            let next: BTreeSet<u64> = keep.intersection(&referenced).copied().collect();
            if next == keep {
                return keep;
            }
            keep = next;
        }
    }
}

fn id_of(h: &mut GcHeap<'_>, a: VirtAddr) -> u64 {
    let mut b = [0u8; 8];
    h.read_data_at(a, 0, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Checks the heap holds exactly the objects `g` says survive, with the model's edges,
/// data and roots; then forgets the rest in the model.
fn check_heap(h: &mut GcHeap<'_>, g: &mut Graph, kind: CollectorKind) -> Result<(), TestCaseError> {
    let survivors = if kind == CollectorKind::RefCount {
        g.counted()
    } else {
        g.reachable()
    };
    let objects = h.objects().unwrap();
    let mut by_addr = BTreeMap::new();
    for &a in &objects {
        by_addr.insert(a, id_of(h, a));
    }
    let found: BTreeSet<u64> = by_addr.values().copied().collect();
    prop_assert_eq!(
        found.len(),
        objects.len(),
        "{}: one object per number",
        kind
    );
    prop_assert_eq!(&found, &survivors, "{}: the survivors", kind);
    for (&a, &id) in &by_addr {
        let o = h.object(a).unwrap();
        let (fields, data) = &g.nodes[&id];
        prop_assert_eq!(o.data_bytes, *data);
        let got: Vec<Option<u64>> = o
            .fields
            .iter()
            .map(|f| (f.0 != 0).then(|| by_addr.get(f).copied().unwrap_or(u64::MAX)))
            .collect();
        prop_assert_eq!(&got, fields, "{}: fields of object {}", kind, id);
        if *data > 8 {
            let mut last = [0u8];
            h.read_data_at(a, data - 1, &mut last).unwrap();
            prop_assert_eq!(last[0], id as u8, "{}: data of object {}", kind, id);
        }
    }
    for (i, r) in g.roots.iter().enumerate() {
        let got = h
            .root(i)
            .unwrap()
            .map(|a| by_addr.get(&a).copied().unwrap_or(u64::MAX));
        prop_assert_eq!(got, *r, "{}: root {}", kind, i);
    }
    g.nodes.retain(|n, _| survivors.contains(n));
    Ok(())
}

/// After a failed allocation of a `size`-byte object in a heap of `heap` bytes (which
/// may have collected and moved objects): every root still leads to the same logical
/// object, and memory really was exhausted by the model's count of the live bytes `L`
/// over `n` live objects:
/// - copying (two halves): `L + size > heap / 2`;
/// - generational (a nursery of a quarter: promotion fails only when the old
///   generation, three quarters, holds more than the live data can fill after a major
///   collection): `L + size > heap / 2`;
/// - mark-compact (one space, compacted): `L + size > heap`;
/// - mark-sweep (just swept, free runs merged, so at most `n + 1` free chunks, each
///   smaller than the object): `heap - L <= (n + 1) * (size - GRANULE)`;
/// - reference counting (eager): the heap holds exactly the objects the model keeps.
///
/// Except for the generational collector (whose nursery may still hold garbage), a
/// full collection has just run, so the heap holds exactly the survivors.
fn check_heap_after_oom(
    h: &mut GcHeap<'_>,
    g: &mut Graph,
    kind: CollectorKind,
    size: u64,
) -> Result<(), TestCaseError> {
    for (i, r) in g.roots.iter().enumerate() {
        let got = h.root(i).unwrap().map(|a| id_of(h, a));
        prop_assert_eq!(got, *r, "{}: root {} after out of memory", kind, i);
    }
    let heap = h.config().heap_bytes.div_ceil(2 * GRANULE) * 2 * GRANULE;
    let survivors = if kind == CollectorKind::RefCount {
        g.counted()
    } else {
        g.reachable()
    };
    let live: u64 = survivors
        .iter()
        .map(|n| object_size(g.nodes[n].0.len() as u64, g.nodes[n].1))
        .sum();
    let n = survivors.len() as u64;
    let why = format!(
        "{kind}: out of memory for {size} bytes with {live} live bytes in {n} objects of a {heap}-byte heap"
    );
    match kind {
        CollectorKind::Copying | CollectorKind::Generational => {
            prop_assert!(live + size > heap / 2, "{}", why)
        }
        CollectorKind::MarkCompact => prop_assert!(live + size > heap, "{}", why),
        CollectorKind::MarkSweep => {
            prop_assert!(heap - live <= (n + 1) * (size - GRANULE), "{}", why)
        }
        CollectorKind::RefCount => {}
    }
    if kind != CollectorKind::Generational {
        check_heap(h, g, kind)?;
    }
    Ok(())
}

/// Between collections: every object the model can reach is reachable in the heap
/// along the same edges (whatever collections ran on their own moved).
fn check_reachable(
    h: &mut GcHeap<'_>,
    g: &Graph,
    kind: CollectorKind,
) -> Result<(), TestCaseError> {
    let mut seen: BTreeMap<u64, VirtAddr> = BTreeMap::new();
    let mut stack: Vec<(VirtAddr, u64)> = Vec::new();
    for (i, r) in g.roots.iter().enumerate() {
        let got = h.root(i).unwrap();
        prop_assert_eq!(got.is_some(), r.is_some(), "{}: root {}", kind, i);
        if let (Some(a), Some(id)) = (got, *r) {
            stack.push((a, id));
        }
    }
    while let Some((a, id)) = stack.pop() {
        prop_assert_eq!(
            id_of(h, a),
            id,
            "{}: object {} is where the graph leads",
            kind,
            id
        );
        if seen.insert(id, a).is_some() {
            continue;
        }
        let o = h.object(a).unwrap();
        let fields = &g.nodes[&id].0;
        prop_assert_eq!(o.fields.len(), fields.len());
        for (f, want) in o.fields.iter().zip(fields) {
            prop_assert_eq!(f.0 != 0, want.is_some(), "{}: a field of {}", kind, id);
            if let Some(w) = want {
                stack.push((*f, *w));
            }
        }
    }
    Ok(())
}

/// The collectors' sizes: a heap of `heap_bytes` (a quarter of it the generational
/// collector's nursery) and [`ROOTS`] root slots.
fn gc_config(heap_bytes: u64) -> GcConfig {
    GcConfig {
        heap_bytes,
        young_bytes: heap_bytes / 4,
        nr_roots: ROOTS,
    }
}

fn run_gc_ops(kind: CollectorKind, heap_bytes: u64, ops: &[GOp]) -> Result<(), TestCaseError> {
    let (mut k, pid) = boot();
    let mut h = GcHeap::new(&mut k, pid, kind, gc_config(heap_bytes)).unwrap();
    let mut g = Graph::default();
    for op in ops {
        match *op {
            GOp::Alloc {
                root,
                nfields,
                data,
            } => {
                match h.alloc(root, nfields, data) {
                    Ok(_) => {}
                    // A small heap may fill up; the failure must leave it intact.
                    Err(GcError::OutOfMemory { bytes }) => {
                        prop_assert_eq!(bytes, object_size(nfields, data));
                        check_heap_after_oom(&mut h, &mut g, kind, bytes)?;
                        continue;
                    }
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
                let id = g.next;
                g.next += 1;
                let mut bytes = vec![id as u8; data as usize];
                bytes[..8].copy_from_slice(&id.to_le_bytes());
                h.write_data(root, 0, &bytes).unwrap();
                g.nodes.insert(id, (vec![None; nfields as usize], data));
                g.roots[root] = Some(id);
            }
            GOp::SetRoot { dst, src } => {
                h.set_root(dst, src).unwrap();
                g.roots[dst] = src.and_then(|s| g.roots[s]);
            }
            GOp::LoadField { dst, src, field } => {
                let r = h.load_field(dst, src, field);
                match g.roots[src] {
                    None => prop_assert_eq!(r, Err(GcError::NullRoot(src))),
                    Some(n) => {
                        let fields = &g.nodes[&n].0;
                        match fields.get(field as usize) {
                            None => prop_assert!(
                                matches!(r, Err(GcError::NoSuchField { .. })),
                                "{:?}",
                                r
                            ),
                            Some(&v) => {
                                r.unwrap();
                                g.roots[dst] = v;
                            }
                        }
                    }
                }
            }
            GOp::StoreField { obj, field, value } => {
                let r = h.store_field(obj, field, value);
                match g.roots[obj] {
                    None => prop_assert_eq!(r, Err(GcError::NullRoot(obj))),
                    Some(n) => {
                        let v = value.and_then(|s| g.roots[s]);
                        let node = g.nodes.get_mut(&n).unwrap();
                        match node.0.get_mut(field as usize) {
                            None => prop_assert!(
                                matches!(r, Err(GcError::NoSuchField { .. })),
                                "{:?}",
                                r
                            ),
                            Some(f) => {
                                r.unwrap();
                                *f = v;
                            }
                        }
                    }
                }
            }
            GOp::Collect => {
                h.collect().unwrap();
                check_heap(&mut h, &mut g, kind)?;
            }
        }
        if heap_bytes < 4 << 10 {
            check_reachable(&mut h, &g, kind)?;
        }
    }
    h.collect().unwrap();
    check_heap(&mut h, &mut g, kind)
}

fn heap_size(small: bool) -> u64 {
    // A small heap collects (and runs out) on its own; a large one only when told.
    if small {
        2 << 10
    } else {
        16 << 10
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn refcount_frees_exactly_the_acyclic_garbage(
        small in any::<bool>(), ops in prop::collection::vec(gop(), 1..200),
    ) {
        run_gc_ops(CollectorKind::RefCount, heap_size(small), &ops)?;
    }

    #[test]
    fn mark_sweep_frees_exactly_the_unreachable(
        small in any::<bool>(), ops in prop::collection::vec(gop(), 1..200),
    ) {
        run_gc_ops(CollectorKind::MarkSweep, heap_size(small), &ops)?;
    }

    #[test]
    fn mark_compact_frees_the_unreachable_and_keeps_the_graph(
        small in any::<bool>(), ops in prop::collection::vec(gop(), 1..200),
    ) {
        run_gc_ops(CollectorKind::MarkCompact, heap_size(small), &ops)?;
    }

    #[test]
    fn copying_frees_the_unreachable_and_keeps_the_graph(
        small in any::<bool>(), ops in prop::collection::vec(gop(), 1..200),
    ) {
        run_gc_ops(CollectorKind::Copying, heap_size(small), &ops)?;
    }

    #[test]
    fn generational_frees_the_unreachable_and_keeps_the_graph(
        small in any::<bool>(), ops in prop::collection::vec(gop(), 1..200),
    ) {
        run_gc_ops(CollectorKind::Generational, heap_size(small), &ops)?;
    }
}

#[test]
fn reference_counting_keeps_exactly_the_unreachable_cycles() {
    // root -> a -> b -> a (a cycle), c alone; drop the root: a and b stay, c goes.
    use GOp::*;
    let ops = [
        Alloc {
            root: 0,
            nfields: 1,
            data: 8,
        },
        Alloc {
            root: 1,
            nfields: 1,
            data: 8,
        },
        StoreField {
            obj: 0,
            field: 0,
            value: Some(1),
        },
        StoreField {
            obj: 1,
            field: 0,
            value: Some(0),
        },
        Alloc {
            root: 2,
            nfields: 0,
            data: 8,
        },
        SetRoot { dst: 0, src: None },
        SetRoot { dst: 1, src: None },
        SetRoot { dst: 2, src: None },
        Collect,
    ];
    run_gc_ops(CollectorKind::RefCount, 16 << 10, &ops).unwrap();
    let (mut k, pid) = boot();
    let mut h = GcHeap::new(&mut k, pid, CollectorKind::RefCount, GcConfig::default()).unwrap();
    h.alloc(0, 1, 8).unwrap();
    h.alloc(1, 1, 8).unwrap();
    h.store_field(0, 0, Some(1)).unwrap();
    h.store_field(1, 0, Some(0)).unwrap();
    h.set_root(0, None).unwrap();
    h.set_root(1, None).unwrap();
    assert_eq!(
        h.objects().unwrap().len(),
        2,
        "the cycle is never reclaimed"
    );
}

// ---- One trace, every allocator ----

#[test]
fn one_trace_through_every_allocator_shows_the_documented_differences() {
    let params = AllocParams {
        pattern: AllocPattern::Phases,
        ops: 6_000,
        min_size: 16,
        max_size: 2_000,
        max_live: 400,
        seed: 7,
        ..AllocParams::default()
    };
    let trace = alloc_trace(&params);
    let mut reports = BTreeMap::new();
    for kind in AllocatorKind::ALL {
        let (mut k, pid) = boot();
        let r = run_alloc_trace(&mut k, pid, kind, params.config, &trace, true).unwrap();
        assert!(r.error.is_none(), "{kind}: {:?}", r.error);
        assert_eq!(r.ops_done, trace.len() as u64);
        reports.insert(kind.name(), r);
    }
    let peak = |n: &str| reports[n].peak_heap_bytes;
    let steps = |n: &str| reports[n].stats.ops.search_steps;
    let summary: Vec<String> = reports
        .values()
        .map(|r| {
            format!(
                "{}: peak {} steps {} internal {:.3} external {:.3} faults {}",
                r.allocator,
                r.peak_heap_bytes,
                r.stats.ops.search_steps,
                r.internal_fragmentation,
                r.external_fragmentation,
                r.memory.page_faults
            )
        })
        .collect();
    let summary = summary.join("\n");
    // Best fit packs at least as tightly as first fit.
    assert!(peak("best-fit") <= peak("first-fit"), "{summary}");
    // Searching only free blocks, or only one size class, visits fewer blocks than
    // walking the whole heap.
    assert!(steps("explicit-lifo") < steps("first-fit"), "{summary}");
    assert!(steps("segregated") < steps("first-fit"), "{summary}");
    assert!(steps("segregated") < steps("best-fit"), "{summary}");
    // Power-of-two rounding: the buddy system and simple segregated storage waste more
    // inside their blocks than any allocator that splits blocks to measure.
    let rounded = [AllocatorKind::Buddy, AllocatorKind::SimpleSegregated];
    for waste in rounded.map(|k| reports[k.name()].internal_fragmentation) {
        for r in reports.values().filter(|r| !rounded.contains(&r.allocator)) {
            assert!(waste > r.internal_fragmentation, "{summary}");
        }
    }
    // Simple segregated storage finds a block in constant time: one step per malloc.
    let simple = &reports["simple-segregated"].stats;
    assert!(simple.ops.search_steps <= simple.nr_malloc, "{summary}");
    // Every allocator saw the same program: same live bytes at the peak.
    let live: BTreeSet<u64> = reports.values().map(|r| r.stats.peak_live_bytes).collect();
    assert_eq!(live.len(), 1, "{summary}");
    println!("{summary}");
}

#[test]
fn best_fit_beats_first_fit_where_first_fit_splits_the_big_hole() {
    // Holes of 1000 and 100 bytes; a 100-byte request then a 1000-byte one. First fit
    // cuts the first from the big hole and must grow the heap for the second; best
    // fit uses the small hole and the big one fits.
    let t = |slot, size| TraceOp::Malloc { slot, size };
    let trace = [
        t(0, 1000),
        t(1, 16),
        t(2, 100),
        t(3, 16),
        TraceOp::Free { slot: 0 },
        TraceOp::Free { slot: 2 },
        t(4, 100),
        t(5, 1000),
    ];
    let peak = |kind| {
        let (mut k, pid) = boot();
        run_alloc_trace(&mut k, pid, kind, AllocConfig::default(), &trace, true)
            .unwrap()
            .peak_heap_bytes
    };
    assert!(peak(AllocatorKind::BestFit) < peak(AllocatorKind::FirstFit));
}

#[test]
fn a_young_object_only_an_old_one_points_to_survives_a_minor_collection() {
    use GOp::*;
    let mut ops = vec![
        Alloc {
            root: 0,
            nfields: 1,
            data: 8,
        },
        Collect,
        Alloc {
            root: 1,
            nfields: 0,
            data: 16,
        },
        StoreField {
            obj: 0,
            field: 0,
            value: Some(1),
        },
        SetRoot { dst: 1, src: None },
    ];
    // Enough garbage to fill the nursery a few times.
    ops.extend((0..40).map(|_| Alloc {
        root: 2,
        nfields: 0,
        data: 40,
    }));
    ops.push(LoadField {
        dst: 1,
        src: 0,
        field: 0,
    });
    run_gc_ops(CollectorKind::Generational, 2 << 10, &ops).unwrap();
}

/// Every collector frees: a thousand objects, each garbage as soon as the next one takes
/// its root, go through a heap that holds a few dozen at once, and no allocation fails.
#[test]
fn every_collector_frees_garbage_when_the_heap_fills() {
    for kind in CollectorKind::ALL {
        let (mut k, pid) = boot();
        let heap_bytes = heap_size(true);
        let mut h = GcHeap::new(&mut k, pid, kind, gc_config(heap_bytes)).unwrap();
        let size = object_size(1, 40);
        let n = 1000;
        assert!(n * size > 10 * heap_bytes);
        for i in 0..n {
            h.alloc(0, 1, 40)
                .unwrap_or_else(|e| panic!("{kind}: allocation {i}: {e}"));
        }
        h.collect().unwrap();
        assert_eq!(h.objects().unwrap().len(), 1, "{kind}: objects left");
    }
}
