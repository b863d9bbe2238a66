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
        1 => (pid.clone(), addr.clone(), len.clone()).prop_map(|(pid, addr, len)| Event::Munmap { pid, addr: VirtAddr(addr), len }),
        1 => (pid.clone(), addr.clone(), len.clone(), prot.clone()).prop_map(|(pid, addr, len, prot)| Event::Mprotect { pid, addr: VirtAddr(addr), len, prot }),
        1 => (pid.clone(), addr.clone()).prop_map(|(pid, addr)| Event::Brk { pid, addr: VirtAddr(addr) }),
        1 => (pid.clone(), pid.clone()).prop_map(|(parent, child)| Event::Fork { parent, child }),
        1 => pid.clone().prop_map(|pid| Event::Exec { pid }),
        1 => (pid.clone(), any::<i32>()).prop_map(|(pid, code)| Event::Exit { pid, code }),
        1 => pid.clone().prop_map(|pid| Event::Switch { pid }),
        1 => (pid, any::<u32>(), addr, len, prot).prop_map(|(pid, key, addr, len, prot)| Event::ShmAttach { pid, key, addr: VirtAddr(addr), len, prot }),
    ]
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
    fn every_event_survives_binary_and_text(events in proptest::collection::vec(event(), 0..300)) {
        prop_assert_eq!(&round_trip(&events, Format::Binary, false), &events);
        prop_assert_eq!(&round_trip(&events, Format::Binary, true), &events);
        prop_assert_eq!(&round_trip(&events, Format::Text, false), &events);
    }
}
