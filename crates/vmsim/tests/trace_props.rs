//! Property tests of the trace formats: any sequence of events survives a round trip
//! through vmsim binary (plain and zstd, whatever the chunking) and through vmsim text.

use proptest::prelude::*;
use vmsim::addr::VirtAddr;
use vmsim::hw::AccessKind;
use vmsim::os::Prot;
use vmsim::trace::{Access, Event, EventReader, EventWriter, Format, MapKind};

fn event() -> impl Strategy<Value = Event> {
    let pid = 0u32..5;
    let addr = prop_oneof![
        any::<u64>(),
        0u64..0x1_0000,
        0x7fff_0000_0000u64..0x7fff_ffff_ffff
    ];
    let len = 1u64..(1 << 40);
    let prot = (0u8..8).prop_map(Prot);
    prop_oneof![
        6 => (pid.clone(), 0usize..3, addr.clone(), 1u32..100_000).prop_map(|(pid, k, va, size)| {
            Event::Access(Access {
                pid,
                kind: [AccessKind::Read, AccessKind::Write, AccessKind::Execute][k],
                va: VirtAddr(va),
                size,
            })
        }),
        1 => pid.clone().prop_map(|pid| Event::Spawn { pid }),
        1 => (pid.clone(), addr.clone(), len.clone(), prot.clone(), any::<bool>(), proptest::option::of((any::<u32>(), any::<u64>())))
            .prop_map(|(pid, addr, len, prot, shared, file)| Event::Mmap {
                pid,
                addr: VirtAddr(addr),
                len,
                prot,
                shared,
                kind: file.map_or(MapKind::Anon, |(file, offset)| MapKind::File { file, offset }),
            }),
        1 => (pid.clone(), addr.clone(), len.clone(), prot.clone(), any::<bool>(), 13u32..=40, any::<bool>())
            .prop_map(|(pid, addr, len, prot, shared, shift, noreserve)| Event::Mmap {
                pid,
                addr: VirtAddr(addr),
                len,
                prot,
                shared,
                kind: MapKind::HugeTlb { page_bytes: 1 << shift, noreserve },
            }),
        1 => (pid.clone(), addr.clone(), len.clone()).prop_map(|(pid, addr, len)| Event::Munmap { pid, addr: VirtAddr(addr), len }),
        1 => (pid.clone(), addr.clone(), len.clone(), prot.clone()).prop_map(|(pid, addr, len, prot)| Event::Mprotect { pid, addr: VirtAddr(addr), len, prot }),
        1 => (pid.clone(), addr.clone()).prop_map(|(pid, addr)| Event::Brk { pid, addr: VirtAddr(addr) }),
        1 => (pid.clone(), pid.clone()).prop_map(|(parent, child)| Event::Fork { parent, child }),
        1 => (pid.clone(), pid.clone()).prop_map(|(parent, child)| Event::Vfork { parent, child }),
        1 => (pid.clone(), any::<u32>(), addr.clone(), len.clone(), proptest::option::of(addr.clone())).prop_map(|(pid, file, offset, len, buf)| Event::FileRead { pid, file, offset, len, buf: buf.map(VirtAddr) }),
        1 => (pid.clone(), any::<u32>(), len.clone()).prop_map(|(pid, file, bytes)| Event::FileReadahead { pid, file, bytes }),
        1 => (pid.clone(), any::<u32>(), addr.clone(), len.clone()).prop_map(|(pid, file, offset, len)| Event::FileWrite { pid, file, offset, len }),
        1 => (pid.clone(), any::<u32>(), len.clone()).prop_map(|(pid, file, bytes)| Event::FileSize { pid, file, bytes }),
        1 => (pid.clone(), addr.clone()).prop_map(|(pid, addr)| Event::Nonzero { pid, addr: VirtAddr(addr) }),
        1 => pid.clone().prop_map(|pid| Event::Values { pid }),
        1 => pid.clone().prop_map(|pid| Event::Exec { pid }),
        1 => (pid.clone(), any::<i32>()).prop_map(|(pid, code)| Event::Exit { pid, code }),
        1 => pid.clone().prop_map(|pid| Event::Switch { pid }),
        1 => (pid, any::<u32>(), addr, len, prot).prop_map(|(pid, key, addr, len, prot)| Event::ShmAttach { pid, key, addr: VirtAddr(addr), len, prot }),
    ]
}

/// The events of binary version 2: threads, exec-image and the other memory calls.
fn new_event() -> impl Strategy<Value = Event> {
    let pid = 0u32..5;
    let addr = prop_oneof![any::<u64>(), 0x7f00_0000_0000u64..0x7fff_ffff_ffff];
    let len = prop_oneof![Just(0u64), 1u64..(1 << 40), any::<u64>()];
    // Named advice and calls are written by name, the rest by number.
    let advice = prop_oneof![0u32..30, any::<u32>()];
    let nr = prop_oneof![0u32..500, any::<u32>()];
    prop_oneof![
        (pid.clone(), any::<u32>()).prop_map(|(pid, tid)| Event::Thread { pid, tid }),
        (pid.clone(), any::<u32>(), any::<i32>()).prop_map(|(pid, tid, code)| Event::ThreadExit {
            pid,
            tid,
            code
        }),
        pid.clone().prop_map(|pid| Event::ExecImage { pid }),
        (
            pid.clone(),
            addr.clone(),
            len.clone(),
            addr.clone(),
            len.clone()
        )
            .prop_map(|(pid, old, old_len, new, new_len)| Event::Mremap {
                pid,
                old: VirtAddr(old),
                old_len,
                new: VirtAddr(new),
                new_len,
            }),
        (pid.clone(), addr.clone(), len, advice).prop_map(|(pid, addr, len, advice)| {
            Event::Madvise {
                pid,
                addr: VirtAddr(addr),
                len,
                advice,
            }
        }),
        (pid.clone(), addr.clone()).prop_map(|(pid, addr)| Event::ShmDetach {
            pid,
            addr: VirtAddr(addr)
        }),
        (pid.clone(), nr).prop_map(|(pid, nr)| Event::Syscall { pid, nr }),
        (pid.clone(), any::<bool>()).prop_map(|(pid, disable)| Event::ThpDisable { pid, disable }),
        (pid.clone(), any::<u64>()).prop_map(|(pid, ns)| Event::Sleep { pid, ns }),
        (pid.clone(), any::<u64>()).prop_map(|(pid, pages)| Event::FsMetadata { pid, pages }),
        (pid.clone(), addr.clone(), 1u64..(1 << 40)).prop_map(|(pid, addr, len)| {
            Event::Populate {
                pid,
                addr: VirtAddr(addr),
                len,
            }
        }),
        (pid.clone(), addr, 1u64..(1 << 40), 0u64..3).prop_map(|(pid, addr, len, m)| {
            Event::Mlock {
                pid,
                addr: VirtAddr(addr),
                len,
                mode: vmsim::trace::Mlock::from_code(m).unwrap(),
            }
        }),
        (pid.clone(), any::<u32>()).prop_map(|(pid, flags)| Event::Mlockall { pid, flags }),
        (pid.clone(), any::<u32>()).prop_map(|(pid, file)| Event::FileShmem { pid, file }),
        (pid.clone(), any::<u32>()).prop_map(|(pid, file)| Event::FileDrop { pid, file }),
        (
            pid,
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            prop_oneof![0u32..8, any::<u32>()]
        )
            .prop_map(|(pid, file, offset, len, advice)| Event::Fadvise {
                pid,
                file,
                offset,
                len,
                advice,
            }),
    ]
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![4 => event(), 1 => new_event()]
}

fn round_trip(events: &[Event], format: Format, zstd: bool) -> Vec<Event> {
    let mut w = EventWriter::new(format, Vec::new(), "prop", zstd).unwrap();
    for e in events {
        w.write(e).unwrap();
    }
    let bytes = w.finish().unwrap();
    let input: Box<dyn std::io::BufRead + Send> = Box::new(std::io::Cursor::new(bytes));
    EventReader::new(format, input, "prop".into(), 4096)
        .unwrap()
        .read_all()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_event_survives_binary_and_text(events in proptest::collection::vec(any_event(), 0..300)) {
        prop_assert_eq!(&round_trip(&events, Format::Binary, false), &events);
        prop_assert_eq!(&round_trip(&events, Format::Binary, true), &events);
        prop_assert_eq!(&round_trip(&events, Format::Text, false), &events);
    }
}
