//! Trace readers: the first byte picks a format (vmsim text, vmsim binary, lackey,
//! ChampSim, plain, oracleGeneral), the rest is the input. Any bytes either read or are
//! refused with an error naming a place; never a panic or a hang. Whatever reads must
//! survive a round trip through the binary format unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::trace::{EventReader, EventWriter, Format};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let format = Format::ALL[pick as usize % Format::ALL.len()];
    let boxed: Box<dyn std::io::BufRead + Send> = Box::new(std::io::Cursor::new(input.to_vec()));
    let Ok(mut r) = EventReader::new(format, boxed, "fuzz".into(), 4096) else {
        return;
    };
    let mut events = Vec::new();
    let mut batch = Vec::new();
    loop {
        match r.next_batch(&mut batch) {
            Err(e) => {
                assert!(e.to_string().starts_with("fuzz"), "{e}");
                return;
            }
            Ok(()) if batch.is_empty() => break,
            Ok(()) => events.extend_from_slice(&batch),
        }
    }
    let mut w = EventWriter::new(Format::Binary, Vec::new(), "out", pick & 0x80 != 0).unwrap();
    for e in &events {
        w.write(e).unwrap();
    }
    let bytes = w.finish().unwrap();
    let boxed: Box<dyn std::io::BufRead + Send> = Box::new(std::io::Cursor::new(bytes));
    let back = EventReader::new(Format::Binary, boxed, "back".into(), 4096)
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(back, events);
});
