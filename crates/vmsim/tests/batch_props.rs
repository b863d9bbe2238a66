//! Property tests of packed batches: a replay that takes the accesses of a batch's
//! plain runs from their packed arrays ([`Sim::feed_batch`]) does exactly what a
//! replay of its events one by one ([`Sim::feed`]) does, and a whole replay
//! ([`Sim::run`]), which passes batches by the thread interleaving while a trace has
//! one thread a process, does what handing every batch to it does.

use proptest::prelude::*;
use vmsim::addr::VirtAddr;
use vmsim::hw::{AccessKind, MachineSpec};
use vmsim::interleave::Interleave;
use vmsim::os::{Kernel, KernelConfig};
use vmsim::sim::Sim;
use vmsim::trace::text::format_event;
use vmsim::trace::text::parse_line;
use vmsim::trace::{Access, Batch, Event, EventReader, Format, BATCH};

/// A stretch of accesses by one process: (pid, kind, how many, first page, offset in
/// the page, size), or (with pid 0) an unmap and map again of process 2's first page,
/// or (with pid 4 or more) a `thread` event, thread `kind` of process `pid - 3`.
type Stretch = (u32, u8, usize, u64, u64, u32);

fn stretch() -> impl Strategy<Value = Stretch> {
    (
        0u32..6,
        0u8..3,
        1usize..60,
        0u64..8,
        prop_oneof![0u64..64, 4080u64..4096],
        1u32..32,
    )
}

const BASE: u64 = 0x1000_0000;

/// Processes 1 and 2 (process 3 is never spawned: its mappings are inferred) with
/// 64 KiB readable, writable and executable from `BASE`, then the stretches, with
/// `filler` loads of process 1 between their halves.
fn trace(filler: u64, stretches: &[Stretch]) -> Vec<Event> {
    let mut events: Vec<Event> = [
        "spawn 1",
        "mmap 1 0x10000000 64KiB rwx",
        "spawn 2",
        "mmap 2 0x10000000 64KiB rwx",
    ]
    .iter()
    .map(|l| parse_line(l).unwrap())
    .collect();
    for (at, &(pid, kind, n, page, offset, size)) in stretches.iter().enumerate() {
        if at == stretches.len() / 2 {
            events.extend((0..filler).map(|i| {
                Event::Access(Access {
                    pid: 1,
                    kind: AccessKind::Read,
                    va: VirtAddr(BASE + i % 16 * 4096),
                    size: 8,
                })
            }));
        }
        if pid >= 4 {
            events.push(Event::Thread {
                pid: pid - 3,
                tid: u32::from(kind),
            });
            continue;
        }
        if pid == 0 {
            events.push(parse_line("munmap 2 0x10000000 4KiB").unwrap());
            events.push(parse_line("mmap 2 0x10000000 4KiB rwx").unwrap());
            continue;
        }
        let kind = [AccessKind::Read, AccessKind::Write, AccessKind::Execute][kind as usize];
        for j in 0..n as u64 {
            events.push(Event::Access(Access {
                pid,
                kind,
                va: VirtAddr(BASE + ((page + j % 3) % 15) * 4096 + offset),
                size,
            }));
        }
    }
    events
}

/// An x86-64 machine, booted.
fn kernel() -> Kernel {
    Kernel::boot(
        MachineSpec::preset("x86-64").unwrap(),
        KernelConfig::default(),
    )
}

/// What a finished replay counted: its counts and rows, the kernel's counters and
/// each process's.
fn summary(sim: &Sim) -> String {
    let procs: Vec<_> = sim
        .kernel
        .processes()
        .iter()
        .map(|p| p.stats.clone())
        .collect();
    format!(
        "{:?}\n{:?}\n{:?}\n{procs:?}",
        sim.stats,
        sim.rows,
        sim.kernel.counters()
    )
}

/// Replays `events` cut into batches of `cut` events, packed or not; the replay's
/// counts, rows and the kernel's counters.
fn replay(events: &[Event], cut: usize, interval: u64, packed: bool) -> String {
    let mut k = kernel();
    let mut sim = Sim::new(&mut k, interval);
    for chunk in events.chunks(cut) {
        if packed {
            let mut b = Batch::with_capacity(chunk.len());
            b.events_mut().extend_from_slice(chunk);
            b.pack(4096);
            sim.feed_batch(&b);
        } else {
            sim.feed(chunk);
        }
    }
    sim.finish();
    summary(&sim)
}

/// Replays `events` as `vmsim run` does ([`Sim::run`], reading them from a text
/// trace), or by handing every batch of them to the thread interleaving.
fn replay_all(events: &[Event], interval: u64, run: bool) -> String {
    let mut k = kernel();
    let mut sim = Sim::new(&mut k, interval);
    if run {
        let mut text = String::from("#vmsim-text 1\n");
        for e in events {
            text += &format_event(e);
            text += "\n";
        }
        let input: Box<dyn std::io::BufRead + Send> =
            Box::new(std::io::Cursor::new(text.into_bytes()));
        let mut reader = EventReader::new(Format::Text, input, "t.vmt".into(), 4096).unwrap();
        sim.run(&mut reader, &mut |_| {}).unwrap();
    } else {
        let mut order = Interleave::new();
        for chunk in events.chunks(BATCH) {
            order.push(chunk, &mut sim);
        }
        order.finish(&mut sim);
        sim.finish();
    }
    summary(&sim)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_packed_batch_replays_as_its_events_do(
        stretches in proptest::collection::vec(stretch(), 1..40),
        cut in 1usize..300,
        interval in prop_oneof![Just(0u64), 1u64..80],
    ) {
        let events = trace(0, &stretches);
        prop_assert_eq!(
            replay(&events, cut, interval, true),
            replay(&events, cut, interval, false)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn a_whole_replay_passes_batches_by_the_interleaving_only_while_it_may(
        filler in prop_oneof![Just(0u64), 3000u64..9000],
        stretches in proptest::collection::vec(stretch(), 1..40),
        interval in prop_oneof![Just(0u64), 1u64..2000],
    ) {
        let events = trace(filler, &stretches);
        prop_assert_eq!(
            replay_all(&events, interval, true),
            replay_all(&events, interval, false)
        );
    }
}

/// The property is not empty: long stretches do make runs, and the replay takes them.
#[test]
fn long_stretches_make_runs() {
    let events = trace(
        0,
        &[
            (1, 0, 100, 0, 8, 8),
            (2, 2, 50, 1, 0, 4),
            (3, 1, 40, 2, 0, 8),
        ],
    );
    let mut b = Batch::with_capacity(events.len());
    b.events_mut().extend_from_slice(&events);
    b.pack(4096);
    assert_eq!(b.runs().len(), 3);
    assert_eq!(
        replay(&events, events.len(), 7, true),
        replay(&events, events.len(), 7, false)
    );
}
