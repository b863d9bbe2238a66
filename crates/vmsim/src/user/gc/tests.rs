//! Unit tests of the collectors: what each reclaims, that moving keeps the graph, the
//! write barrier, and the error cases.

use super::*;
use crate::user::test_support::boot;

fn cfg(heap: u64) -> GcConfig {
    GcConfig {
        heap_bytes: heap,
        young_bytes: heap / 8,
        nr_roots: 8,
    }
}

/// Runs `f` on a new heap of `kind` with `cfg(heap)`, in a process of its own.
fn with_heap<T>(kind: CollectorKind, heap: u64, f: impl FnOnce(&mut GcHeap<'_>) -> T) -> T {
    let (mut k, pid) = boot("gc");
    let mut h = GcHeap::new(&mut k, pid, kind, cfg(heap)).unwrap();
    f(&mut h)
}

/// Makes roots 0 and 1 two objects of one field pointing to each other, then drops
/// both roots: a cycle nothing else reaches.
fn drop_a_cycle(h: &mut GcHeap<'_>) {
    h.alloc(0, 1, 0).unwrap();
    h.alloc(1, 1, 0).unwrap();
    h.store_field(0, 0, Some(1)).unwrap();
    h.store_field(1, 0, Some(0)).unwrap();
    h.set_root(0, None).unwrap();
    h.set_root(1, None).unwrap();
}

/// Builds a list of `n` nodes (2 fields, 8 data bytes holding the index) in root 0.
fn list(h: &mut GcHeap<'_>, n: u64) {
    h.set_root(0, None).unwrap();
    for i in 0..n {
        h.alloc(1, 2, 8).unwrap();
        h.write_data(1, 0, &i.to_le_bytes()).unwrap();
        h.store_field(1, 0, Some(0)).unwrap();
        h.set_root(0, Some(1)).unwrap();
    }
    h.set_root(1, None).unwrap();
}

/// The indices along the list in root 0.
fn walk(h: &mut GcHeap<'_>) -> Vec<u64> {
    let mut out = Vec::new();
    let mut p = h.root(0).unwrap();
    while let Some(a) = p {
        let mut b = [0; 8];
        h.read_data_at(a, 0, &mut b).unwrap();
        out.push(u64::from_le_bytes(b));
        let o = h.object(a).unwrap();
        p = (o.fields[0].0 != 0).then_some(o.fields[0]);
    }
    out
}

#[test]
fn every_collector_keeps_the_reachable_and_frees_the_rest() {
    for kind in CollectorKind::ALL {
        with_heap(kind, 1 << 20, |h| {
            list(h, 50);
            // Garbage: a list built and dropped.
            h.alloc(2, 2, 8).unwrap();
            for _ in 0..30 {
                h.alloc(3, 2, 8).unwrap();
                h.store_field(3, 0, Some(2)).unwrap();
                h.set_root(2, Some(3)).unwrap();
            }
            h.set_root(2, None).unwrap();
            h.set_root(3, None).unwrap();
            h.collect().unwrap();
            assert_eq!(h.objects().unwrap().len(), 50, "{kind}");
            let want: Vec<u64> = (0..50).rev().collect();
            assert_eq!(walk(h), want, "{kind}");
            assert!(h.stats().objects_reclaimed >= 31, "{kind}: {:?}", h.stats());
        });
    }
}

#[test]
fn reference_counting_cannot_reclaim_a_cycle() {
    with_heap(CollectorKind::RefCount, 1 << 16, |h| {
        drop_a_cycle(h);
        h.collect().unwrap();
        assert_eq!(h.objects().unwrap().len(), 2, "the cycle leaks");
        assert_eq!(h.stats().objects_reclaimed, 0);
        // The same shape without the back edge goes at once.
        h.alloc(0, 1, 0).unwrap();
        h.alloc(1, 1, 0).unwrap();
        h.store_field(0, 0, Some(1)).unwrap();
        h.set_root(1, None).unwrap();
        h.set_root(0, None).unwrap();
        assert_eq!(h.objects().unwrap().len(), 2);
        assert_eq!(h.stats().objects_reclaimed, 2);
    });
    // A tracing collector takes the cycle.
    with_heap(CollectorKind::MarkSweep, 1 << 16, |h| {
        drop_a_cycle(h);
        h.collect().unwrap();
        assert!(h.objects().unwrap().is_empty());
    });
}

#[test]
fn collections_run_on_their_own_when_the_heap_fills() {
    for kind in CollectorKind::ALL
        .into_iter()
        .filter(|k| *k != CollectorKind::RefCount)
    {
        with_heap(kind, 64 << 10, |h| {
            list(h, 20);
            for _ in 0..5_000 {
                h.alloc(2, 1, 24).unwrap();
            }
            let s = h.stats();
            assert!(s.collections > 0, "{kind}");
            assert!(s.max_pause_accesses > 0 && s.pause_accesses >= s.max_pause_accesses);
            assert_eq!(walk(h), (0..20).rev().collect::<Vec<_>>(), "{kind}");
            if kind.moves() {
                assert!(s.objects_moved > 0, "{kind}");
            }
        });
    }
}

#[test]
fn the_write_barrier_keeps_young_objects_an_old_one_points_to() {
    with_heap(CollectorKind::Generational, 256 << 10, |h| {
        h.alloc(0, 1, 8).unwrap();
        h.collect().unwrap(); // now old
        h.alloc(1, 0, 8).unwrap();
        h.write_data(1, 0, &77u64.to_le_bytes()).unwrap();
        h.store_field(0, 0, Some(1)).unwrap();
        h.set_root(1, None).unwrap();
        assert_eq!(h.stats().barrier_records, 1);
        // Fill the nursery until a minor collection runs.
        while h.stats().minor_collections == 0 {
            h.alloc(2, 0, 64).unwrap();
        }
        assert_eq!(h.stats().major_collections, 1, "only the explicit one");
        h.load_field(1, 0, 0).unwrap();
        let mut b = [0; 8];
        h.read_data(1, 0, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 77);
        assert!(h.stats().objects_promoted >= 1);
    });
}

#[test]
fn bad_requests_are_errors() {
    with_heap(CollectorKind::MarkSweep, 4096, |h| {
        assert_eq!(h.alloc(99, 0, 0), Err(GcError::NoSuchRoot(99)));
        assert_eq!(h.store_field(0, 0, None), Err(GcError::NullRoot(0)));
        h.alloc(0, 1, 8).unwrap();
        assert_eq!(
            h.store_field(0, 5, None),
            Err(GcError::NoSuchField {
                field: 5,
                nfields: 1
            })
        );
        assert!(matches!(
            h.write_data(0, 4, &[0; 8]),
            Err(GcError::DataOutOfRange { .. })
        ));
        assert!(matches!(
            h.alloc(1, 1 << 20, 0),
            Err(GcError::TooLarge { .. })
        ));
        // Everything live and the heap full: out of memory, reported.
        let mut e = None;
        for _ in 0..1000 {
            if let Err(x) = h.alloc(1, 1, 100) {
                e = Some(x);
                break;
            }
            h.store_field(1, 0, Some(0)).unwrap();
            h.set_root(0, Some(1)).unwrap();
        }
        let e = e.expect("a 4 KiB heap fills");
        assert!(matches!(e, GcError::OutOfMemory { .. }));
        assert!(e.to_string().contains("out of memory"));
    });
}

#[test]
fn a_smashed_header_is_reported_not_a_panic() {
    for kind in CollectorKind::ALL {
        with_heap(kind, 64 << 10, |h| {
            list(h, 10);
            let a = h.root(0).unwrap().unwrap();
            // The program scribbles over the head's header and first field.
            h.mem().write(a.0, &[0xff; 24]).unwrap();
            let r = h.collect().and_then(|_| h.objects().map(|_| ()));
            if kind != CollectorKind::RefCount {
                assert!(r.is_err(), "{kind}");
            }
            // Whatever happened, the heap answers with values.
            let _ = h.alloc(1, 1, 8);
            let _ = h.set_root(0, None);
        });
    }
}
