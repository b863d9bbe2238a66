//! The QEMU plugin's wire protocol: any bytes, cut into messages on any connections,
//! either become events or an error naming the connection and word; never a panic.
//! Every event the demultiplexer writes encodes and decodes as the binary format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::trace::record::demux::Demux;
use vmsim::trace::record::wire;

fuzz_target!(|data: &[u8]| {
    let mut d = Demux::new();
    let mut events = Vec::new();
    // Each chunk: a byte choosing the connection (0-3), a byte of length in words, then
    // the words (the header is added so most inputs get past it).
    let mut rest = data;
    while rest.len() >= 2 {
        let (conn, n) = ((rest[0] % 4) as usize, rest[1] as usize);
        rest = &rest[2..];
        let take = (n * 8).min(rest.len() / 8 * 8);
        let mut words = vec![wire::MAGIC, 1000 + conn as u64];
        words.extend(rest[..take].chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())));
        rest = &rest[take..];
        d.open(conn);
        if n == 0 {
            let _ = d.close(conn, &mut |e| events.push(e));
        } else if d.readable(conn) && d.message(conn, &words, &mut |e| events.push(e)).is_err() {
            return;
        }
    }
    d.finish(0, &mut |e| events.push(e));
    let mut w = vmsim::trace::EventWriter::new(vmsim::trace::Format::Binary, Vec::new(), "fuzz", false).unwrap();
    for e in &events {
        w.write(e).unwrap();
    }
    let bytes = w.finish().unwrap();
    let back = vmsim::trace::EventReader::new(
        vmsim::trace::Format::Binary,
        Box::new(std::io::Cursor::new(bytes)),
        "fuzz".into(),
        4096,
    )
    .and_then(|mut r| r.read_all())
    .unwrap();
    assert_eq!(back, events);
});
