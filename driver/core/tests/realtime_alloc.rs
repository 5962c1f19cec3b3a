//! Invariant 6: the delivery path and the bridge-side helpers allocate nothing. A counting global
//! allocator watches this thread while every realtime entry point runs.
use hardmute_alloc_counter::{heap_ops, CountingAllocator};
use hardmute_core::bridge::{Feeder, FeederConfig, HostClock, RbProducer};
use hardmute_core::control::{Authority, ChangeSource, ControlBlock};
use hardmute_core::convert::convert;
use hardmute_core::deliver::{deliver_from_input, deliver_from_ring};
use hardmute_core::drift::{DriftController, Resampler};
use hardmute_core::level::{LevelMeter, LevelTap};
use hardmute_core::ring::{RbConsumer, RingHeader, SharedRing};
use hardmute_core::{Gate, I24};
use ringbuf::traits::{Producer, Split};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn counted(f: impl FnOnce()) -> u64 {
    heap_ops(f).1
}

#[test]
fn realtime_entry_points_do_not_allocate() {
    // The harness must be able to see an allocation, or a zero below proves nothing.
    assert_eq!(
        counted(|| drop(std::hint::black_box(vec![1u8; 16]))),
        2,
        "alloc + free"
    );

    let slots: Vec<AtomicU32> = (0..4096).map(|_| AtomicU32::new(0)).collect();
    let header = RingHeader::new(4096, 2);
    let ring = SharedRing::attach(&header, &slots).unwrap();
    let (mut writer, mut reader) = (ring.writer(), ring.reader());
    let (mut prod, cons) = ringbuf::HeapRb::<f32>::new(4096).split();
    let mut cons = RbConsumer(cons);
    let ctl = ControlBlock::new(false);
    let mut gate = Gate::default();
    let mut rs = Resampler::new(2, 44_100, 48_000);
    let mut ctrl = DriftController::new(600.0, 48_000.0);
    let input = vec![0.25f32; 2 * 441];
    let mic = vec![1000i16; 2 * 441];
    let (feed_prod, _feed_cons) = ringbuf::HeapRb::<f32>::new(8192).split();
    let mut feed_prod = RbProducer(feed_prod);
    let mut feeder = Feeder::new(FeederConfig {
        in_rate: 44_100,
        in_channels: 2,
        dev_rate: 48_000,
        dev_channels: 1,
        dev_period: 480,
        target_fill: 600,
    });
    let mut resampled = vec![0.0f32; 2 * 600];
    let mut out_f = vec![0.0f32; 2 * 480];
    let mut out_i16 = vec![0i16; 2 * 480];
    let mut out_i24 = vec![I24(0); 2 * 480];
    let mut out_i32 = vec![0i32; 2 * 480];
    let mut out_i32_app = vec![0i32; 2 * 480];
    // The level meter as the Linux filter (Arc tap, f32 output) and the bridges (integer
    // capture, silent packets) run it.
    let tap = Arc::new(LevelTap::new());
    let mut meter_out = LevelMeter::new(tap.clone(), 48_000);
    let bridge_tap = LevelTap::new();
    let mut meter_in = LevelMeter::new(&bridge_tap, 44_100);

    let n = counted(|| {
        for i in 0..200 {
            // bridge side
            let (_, made) = rs.process(&input, &mut resampled);
            writer.push(&resampled[..2 * made]);
            prod.push_slice(&resampled[..2 * made]);
            rs.set_correction(ctrl.update(600.0 + i as f64, 0.01));
            ctl.heartbeat();
            ctl.stamp_cycle(1 + i as u64 * 10_000_000);
            let clock = HostClock {
                now: 1 + i as u64 * 10_000_000 + 5_000_000,
                ticks_per_second: 1_000_000_000,
            };
            std::hint::black_box(feeder.push(&mic, &mut feed_prod, &ctl, clock));
            // delivery side, every format, muted and not
            if i % 50 == 25 {
                ctl.set_muted(i % 100 == 25, ChangeSource::Hotkey, Authority::Owner)
                    .unwrap();
                ctl.wait_until_effective(|| {}, 1);
            }
            deliver_from_ring(&ctl, &mut gate, &mut reader, &mut out_f, 2);
            deliver_from_ring(&ctl, &mut gate, &mut cons, &mut out_i16, 2);
            convert(&out_f, 2, &mut out_i32, 2);
            deliver_from_input(&ctl, &mut gate, Some(&out_i32[..480]), &mut out_i32_app, 2);
            convert(&out_i16, 2, &mut out_i24, 2);
            meter_out.add(&out_f, 2);
            meter_in.add_samples(&mic, 2);
            meter_in.add_silence(441, 2);
            std::hint::black_box(tap.read());
            std::hint::black_box((&out_f, &out_i16, &out_i24, &out_i32_app));
        }
    });
    assert_eq!(n, 0, "allocations on the realtime path");
    assert!(ctl.snapshot().frames_delivered >= 3 * 200 * 480);
    // The meters did real work: 200 x 480 frames = 40 windows of 2400; 200 x 882 frames =
    // 80 windows of 2205 = 5 blocks of 441, the last one silence, mic, silence, mic, silence.
    assert_eq!(tap.read().windows, 40);
    let bridge = bridge_tap.read();
    assert_eq!(bridge.windows, 80);
    let mic_level = 1000.0 / 32768.0;
    assert!((bridge.peak - mic_level).abs() < 1e-6, "{bridge:?}");
    assert!(
        (bridge.rms - mic_level * 0.4f32.sqrt()).abs() < 1e-6,
        "silence counts in the RMS: {bridge:?}"
    );
}
