//! Unit tests of the allocators: each policy's placement, merging and trimming, and the
//! error cases.

use super::*;
use crate::user::test_support::{boot, boot_with_ram};

/// Runs `f` on a new heap of `kind` with `config`, in a process of its own.
fn with_heap<T>(kind: AllocatorKind, config: AllocConfig, f: impl FnOnce(&mut Heap<'_>) -> T) -> T {
    let (mut k, pid) = boot("alloc");
    let mut h = Heap::new(&mut k, pid, kind, config).unwrap();
    f(&mut h)
}

/// Runs `f` on a new heap of every allocator with the default tunables.
fn with_every_heap(f: impl Fn(AllocatorKind, &mut Heap<'_>)) {
    for kind in AllocatorKind::ALL {
        with_heap(kind, AllocConfig::default(), |h| f(kind, h));
    }
}

#[test]
fn every_allocator_serves_frees_and_reuses() {
    with_every_heap(|kind, h| {
        let a = h.malloc(100).unwrap();
        let b = h.malloc(200).unwrap();
        assert_eq!(a.0 % 16, 0, "{kind}: aligned");
        assert!(a.0 + 100 <= b.0 || b.0 + 200 <= a.0, "{kind}: disjoint");
        h.mem().write(a.0, &[7; 100]).unwrap();
        h.free(b).unwrap();
        let c = h.malloc(200).unwrap();
        assert_eq!(c, b, "{kind}: the freed block is reused");
        let mut buf = [0; 100];
        h.mem().read(a.0, &mut buf).unwrap();
        assert_eq!(buf, [7; 100], "{kind}");
        assert_eq!(h.stats().live_bytes, 300);
    });
}

#[test]
fn double_and_invalid_frees_are_reported_and_change_nothing() {
    with_every_heap(|kind, h| {
        let a = h.malloc(64).unwrap();
        h.free(a).unwrap();
        assert_eq!(h.free(a), Err(AllocError::DoubleFree { addr: a }), "{kind}");
        let bogus = VirtAddr(a.0 + 8);
        assert_eq!(
            h.free(bogus),
            Err(AllocError::InvalidFree { addr: bogus }),
            "{kind}"
        );
        assert_eq!(
            h.realloc(a, 10),
            Err(AllocError::DoubleFree { addr: a }),
            "{kind}"
        );
        assert!(h.free(VirtAddr(0)).is_ok());
        assert_eq!(h.stats().nr_errors, 3);
        let msg = h.free(a).unwrap_err().to_string();
        assert!(msg.contains("double free"), "{msg}");
        // The heap still works.
        let b = h.malloc(64).unwrap();
        h.free(b).unwrap();
    });
}

#[test]
fn large_requests_get_their_own_mapping_and_give_it_back() {
    with_heap(AllocatorKind::Segregated, AllocConfig::default(), |h| {
        let p = h.malloc(1 << 20).unwrap();
        assert_eq!(h.stats().nr_mmap, 1);
        assert!(h.brk_bytes() < 4096);
        h.mem().write(p.0 + (1 << 20) - 1, &[1]).unwrap();
        h.free(p).unwrap();
        assert_eq!(h.stats().nr_munmap, 1);
        assert_eq!(h.stats().heap_bytes, h.brk_bytes());
    });
}

#[test]
fn a_large_free_block_at_the_top_is_given_back() {
    // Simple segregated storage keeps its pages (a documented limitation).
    for kind in AllocatorKind::ALL
        .into_iter()
        .filter(|&k| k != AllocatorKind::SimpleSegregated)
    {
        let cfg = AllocConfig {
            mmap_threshold: 64 << 10,
            trim_threshold: 64 << 10,
        };
        with_heap(kind, cfg, |h| {
            let ps: Vec<_> = (0..40).map(|_| h.malloc(4000).unwrap()).collect();
            let grown = h.brk_bytes();
            for p in ps {
                h.free(p).unwrap();
            }
            assert!(
                h.brk_bytes() < grown / 2,
                "{kind}: {} of {grown}",
                h.brk_bytes()
            );
            assert!(h.stats().ops.trims > 0, "{kind}");
        });
    }
}

#[test]
fn freed_neighbours_merge() {
    for kind in [
        AllocatorKind::FirstFit,
        AllocatorKind::ExplicitLifo,
        AllocatorKind::ExplicitAddress,
        AllocatorKind::Segregated,
        AllocatorKind::Buddy,
    ] {
        with_heap(kind, AllocConfig::default(), |h| {
            let a = h.malloc(48).unwrap();
            let b = h.malloc(48).unwrap();
            let _guard = h.malloc(48).unwrap();
            h.free(a).unwrap();
            h.free(b).unwrap();
            assert!(h.stats().ops.coalesces >= 1, "{kind}");
            // The merged block holds what neither half could.
            let c = h.malloc(96).unwrap();
            assert_eq!(c, a, "{kind}");
        });
    }
}

#[test]
fn best_fit_takes_the_smallest_hole_and_first_fit_the_first() {
    let holes = |kind| {
        with_heap(kind, AllocConfig::default(), |h| {
            let big = h.malloc(400).unwrap();
            let _g1 = h.malloc(16).unwrap();
            let small = h.malloc(100).unwrap();
            let _g2 = h.malloc(16).unwrap();
            h.free(big).unwrap();
            h.free(small).unwrap();
            let p = h.malloc(90).unwrap();
            (p, big, small)
        })
    };
    let (p, big, _) = holes(AllocatorKind::FirstFit);
    assert_eq!(p, big);
    let (p, _, small) = holes(AllocatorKind::BestFit);
    assert_eq!(p, small);
}

#[test]
fn realloc_keeps_contents_and_calloc_zeroes() {
    with_every_heap(|kind, h| {
        let p = h.malloc(40).unwrap();
        h.mem().write(p.0, &[9; 40]).unwrap();
        let _block = h.malloc(8).unwrap();
        let q = h.realloc(p, 5000).unwrap();
        let mut buf = [0; 40];
        h.mem().read(q.0, &mut buf).unwrap();
        assert_eq!(buf, [9; 40], "{kind}");
        h.free(q).unwrap();
        // Reuse dirty memory: calloc must zero it.
        let z = h.calloc(10, 40).unwrap();
        let mut buf = [1; 400];
        h.mem().read(z.0, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "{kind}");
        assert_eq!(h.realloc(z, 0).unwrap(), VirtAddr(0));
        assert!(matches!(
            h.calloc(u64::MAX, 2),
            Err(AllocError::TooLarge(_))
        ));
    });
}

#[test]
fn out_of_memory_is_an_error_not_a_crash() {
    let (mut k, pid) = boot_with_ram("oom", 16 << 20);
    let mut h = Heap::new(&mut k, pid, AllocatorKind::BestFit, AllocConfig::default()).unwrap();
    let e = h.malloc(1 << 40).unwrap_err();
    assert!(matches!(e, AllocError::OutOfMemory { .. }), "{e}");
    assert!(e.to_string().contains("out of memory"));
    assert_eq!(h.stats().nr_failed, 1);
    let e = h.malloc(u64::MAX - 4).unwrap_err();
    assert!(
        matches!(e, AllocError::TooLarge(_) | AllocError::OutOfMemory { .. }),
        "{e}"
    );
    // Still usable.
    let p = h.malloc(100).unwrap();
    h.free(p).unwrap();
}

#[test]
fn heap_walk_agrees_with_the_live_table() {
    with_every_heap(|kind, h| {
        let ps: Vec<_> = (1..30).map(|i| h.malloc(i * 24).unwrap()).collect();
        for p in ps.iter().step_by(3) {
            h.free(*p).unwrap();
        }
        let allocated = h.heap_blocks().unwrap().iter().filter(|b| b.2).count();
        assert_eq!(allocated, h.live_blocks().len(), "{kind}");
    });
}

#[test]
fn metadata_accesses_go_through_the_mmu() {
    let (mut k, pid) = boot("alloc");
    let before = k.process(pid).unwrap().stats.accesses;
    let mut h = Heap::new(&mut k, pid, AllocatorKind::FirstFit, AllocConfig::default()).unwrap();
    for _ in 0..10 {
        h.malloc(32).unwrap();
    }
    let counted = h.stats().accesses;
    drop(h);
    assert!(counted > 20);
    assert!(k.process(pid).unwrap().stats.accesses - before >= counted);
}

#[test]
fn simple_segregated_storage_rounds_to_classes_and_reuses_them() {
    with_heap(
        AllocatorKind::SimpleSegregated,
        AllocConfig::default(),
        |h| {
            let a = h.malloc(20).unwrap();
            let b = h.malloc(30).unwrap();
            assert_eq!(b.0 - a.0, 32, "both in the 32-byte class, side by side");
            assert_eq!(h.usable_size(a).unwrap(), 32);
            let big = h.malloc(1000).unwrap();
            assert_eq!(
                big.0 / 4096,
                h.heap_blocks().unwrap().last().unwrap().0 .0 / 4096
            );
            h.free(a).unwrap();
            assert_eq!(h.malloc(17).unwrap(), a, "LIFO reuse within the class");
            // Bigger than the largest class: a mapping of its own.
            h.malloc(3000).unwrap();
            assert_eq!(h.stats().nr_mmap, 1);
            assert_eq!(h.brk_bytes(), 2 * 4096, "one page per class used");
        },
    );
}

#[test]
fn a_buffer_overflow_over_the_metadata_is_reported_not_a_panic() {
    with_every_heap(|kind, h| {
        let a = h.malloc(32).unwrap();
        let b = h.malloc(32).unwrap();
        let c = h.malloc(32).unwrap();
        // The program writes past the end of `a`, over `b`'s header.
        h.mem().write(a.0, &[0xff; 80]).unwrap();
        let mut errors = 0;
        for r in [h.free(b), h.free(c), h.free(a)] {
            errors += r.is_err() as u32;
        }
        for _ in 0..20 {
            errors += h.malloc(40).is_err() as u32;
        }
        if kind != AllocatorKind::SimpleSegregated {
            assert!(errors > 0, "{kind}: the corruption goes unnoticed");
        }
    });
}
