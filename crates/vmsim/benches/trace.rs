//! Trace throughput: decoding the binary format, and replaying events through the
//! kernel and the MMU (`Sim`), in events per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vmsim::hw::MachineSpec;
use vmsim::os::{Kernel, KernelConfig};
use vmsim::sim::Sim;
use vmsim::trace::binary::{BinaryReader, BinaryWriter};
use vmsim::trace::synth::{Generator, Layout, SynthParams, WorkloadKind};
use vmsim::trace::Event;

const N: u64 = 1_000_000;

fn events(kind: WorkloadKind, footprint: u64) -> Vec<Event> {
    let mut p = SynthParams::new(kind);
    p.accesses = N;
    p.footprint = footprint;
    let layout = Layout {
        page_size: 4096,
        data_base: 0x10_0000_0000,
        data_room: 1 << 40,
        stack_top: 0x7fff_ffff_f000,
        text_base: 0x40_0000,
    };
    let mut g = Generator::new(p, layout).unwrap();
    let mut all = Vec::new();
    loop {
        let mut b = Vec::new();
        g.next_batch(&mut b);
        if b.is_empty() {
            return all;
        }
        all.extend(b);
    }
}

fn bench(c: &mut Criterion) {
    let zipf = events(WorkloadKind::Zipf, 64 << 20);
    let mut g = c.benchmark_group("trace");
    g.sample_size(10);
    g.throughput(Throughput::Elements(zipf.len() as u64));
    for zstd in [false, true] {
        let mut w = BinaryWriter::new(Vec::new(), "bench", zstd).unwrap();
        for e in &zipf {
            w.write(e).unwrap();
        }
        let bytes = w.finish().unwrap();
        let name = if zstd {
            "decode_binary_zstd"
        } else {
            "decode_binary"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut r = BinaryReader::new(&bytes[..], "bench".into()).unwrap();
                let mut batch = Vec::with_capacity(4096);
                let mut n = 0usize;
                loop {
                    batch.clear();
                    r.next_batch(&mut batch).unwrap();
                    if batch.is_empty() {
                        break n;
                    }
                    n += batch.len();
                }
            })
        });
    }
    for (name, ev) in [
        ("replay_zipf_64MiB", &zipf),
        ("replay_seq_16MiB", &events(WorkloadKind::Seq, 16 << 20)),
    ] {
        g.throughput(Throughput::Elements(ev.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    Kernel::boot(
                        MachineSpec::preset("x86-64").unwrap(),
                        KernelConfig::default(),
                    )
                },
                |mut k| {
                    let mut sim = Sim::new(&mut k, 0);
                    sim.feed(ev);
                    sim.finish();
                    sim.stats.translations
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
