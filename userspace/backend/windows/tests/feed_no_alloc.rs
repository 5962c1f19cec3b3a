//! Invariant 6 for the Windows bridge: the per-packet step (`CaptureFeed::on_packet`, what the
//! WASAPI capture callback runs) allocates nothing, in every sample format, for silent packets,
//! with the driver reading or idle, and when the driver's stream rate changes; its level meter
//! included. A counting global
//! allocator watches this thread while it runs. Portable: runs on Linux and under wine.
use hardmute_backend_windows::feed::{
    init_header, ring_geometry, CaptureFeed, FeedStats, RING_CHANNELS, RING_FRAMES,
};
use hardmute_backend_windows::{MixFormat, SampleKind, Samples};
use hardmute_core::bridge::HostClock;
use hardmute_core::level::LevelTap;
use hardmute_core::ring::{RingHeader, SampleRing, SharedRing};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

fn counted(f: impl FnOnce()) -> u64 {
    hardmute_alloc_counter::heap_ops(f).1
}

#[test]
fn the_capture_callback_step_does_not_allocate() {
    // The harness must be able to see an allocation, or a zero below proves nothing.
    assert_eq!(counted(|| drop(std::hint::black_box(vec![1u8; 16]))), 2);

    let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
    let header = RingHeader::new(0, 0);
    init_header(&header, g);
    let slots: Vec<AtomicU32> = (0..(g.bytes - 32) / 4).map(|_| AtomicU32::new(0)).collect();
    let ring = SharedRing::attach(&header, &slots).unwrap();
    let mut reader = ring.reader();
    let stats = FeedStats::default();
    let f32s = vec![0.25f32; 441 * 2];
    let i16s = vec![4096i16; 480];
    let i32s = vec![1 << 28; 480 * 4];
    let mut out = vec![0.0f32; 960];
    let tps = 10_000_000u64;
    let level = Arc::new(LevelTap::new());

    for (format, packet) in [
        (
            MixFormat {
                rate: 44_100,
                channels: 2,
                kind: SampleKind::F32,
            },
            Samples::F32(&f32s),
        ),
        (
            MixFormat {
                rate: 48_000,
                channels: 1,
                kind: SampleKind::I16,
            },
            Samples::I16(&i16s),
        ),
        (
            MixFormat {
                rate: 48_000,
                channels: 4,
                kind: SampleKind::I32,
            },
            Samples::I32(&i32s),
        ),
    ] {
        let mut feed = CaptureFeed::with_level_tap(format, 48_000, level.clone());
        let mut now = 1_000u64;
        let allocations = counted(|| {
            for cycle in 0..300u32 {
                now += tps / 100;
                let clock = HostClock {
                    now,
                    ticks_per_second: tps,
                };
                // The driver reads for a while, then stops (idle), then switches rate.
                if !(150..200).contains(&cycle) {
                    reader.pop_into(&mut out);
                }
                let rate = if cycle >= 250 { 44_100 } else { 0 };
                let samples = if cycle % 7 == 3 {
                    Samples::Silent { frames: 480 }
                } else {
                    packet
                };
                feed.on_packet(samples, &mut ring.writer(), clock, rate, &stats);
            }
        });
        assert_eq!(allocations, 0, "{format:?}: the capture step allocated");
        assert_eq!(feed.device_rate(), 44_100, "the rate change was applied");
        // The last window's level: the packet's level (silent packets mixed in lower the RMS).
        let r = level.read();
        assert!(
            r.peak > 0.05 && r.rms > 0.05 && r.rms <= r.peak,
            "{format:?}: {r:?}"
        );
        reader.discard_all();
    }
    // The runs did real work, so the zero above is not an empty loop's.
    assert_eq!(stats.packets.load(Ordering::Relaxed), 900);
    assert!(
        level.read().windows >= 3 * 50,
        "the meter published its windows"
    );
    assert!(stats.frames_out.load(Ordering::Relaxed) > 100_000);
    assert!(stats.device_running_packets.load(Ordering::Relaxed) >= 600);
    assert!(
        stats.dropped_idle.load(Ordering::Relaxed) > 0,
        "idle phase topped up and dropped"
    );
}
