//! One cycle of the in-server gate (`rt::GateRt::process`, what the LADSPA `run` does per
//! channel) on a 1024-frame mono quantum, against a plain copy of the same buffer: what the gate's
//! own code costs the PipeWire server, apart from the two filter-chain nodes that host it.
//!
//! `cargo bench -p hardmute-linux-gate --bench cycle`. At 48 kHz a 1024-frame quantum comes
//! 46.875 times a second, so N ns per cycle is N * 46.875 / 10^9 of one core (e.g. 1000 ns is
//! 0.0047 %).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hardmute_core::control::{Authority, ChangeSource};
use hardmute_linux_gate::abi::GateShm;
use hardmute_linux_gate::rt::GateRt;

const RATE: u32 = 48_000;
const QUANTUM: usize = 1024;
/// The controller beats every few hundred ms, a cycle every 21 ms: beat every 8 cycles here so
/// the lease stays open for the whole run (its cost is included, generously).
const CYCLES_PER_BEAT: u64 = 8;

fn cycle(c: &mut Criterion) {
    let input: Vec<f32> = (0..QUANTUM)
        .map(|i| (i as f32 * 0.01).sin() * 0.5)
        .collect();
    let mut buf = input.clone();
    let mut g = c.benchmark_group("gate_cycle_1024_mono");
    g.throughput(Throughput::Elements(QUANTUM as u64));
    g.bench_function("copy_only", |b| {
        b.iter(|| buf.copy_from_slice(black_box(&input)))
    });
    for muted in [false, true] {
        let shm = GateShm::new(1);
        shm.control
            .set_muted(muted, ChangeSource::Cli, Authority::Owner)
            .unwrap();
        let mut gate = GateRt::new(RATE, Some(&shm));
        let mut n = 0u64;
        let name = if muted {
            "copy_gate_muted"
        } else {
            "copy_gate_live"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                if n.is_multiple_of(CYCLES_PER_BEAT) {
                    shm.beat(n, 2);
                }
                n += 1;
                buf.copy_from_slice(black_box(&input));
                black_box(gate.process(Some(&shm), &mut buf, false))
            })
        });
    }
    let mut gate = GateRt::new(RATE, None);
    g.bench_function("copy_gate_no_page", |b| {
        b.iter(|| {
            buf.copy_from_slice(black_box(&input));
            black_box(gate.process(None, &mut buf, false))
        })
    });
    g.finish();
}

criterion_group!(benches, cycle);
criterion_main!(benches);
