//! The user-space half of the Windows bridge on a real capture stream (Windows; wine with the
//! ALSA null device): WASAPI packets go through `CaptureFeed` into a SharedRing laid out like the
//! driver's, while this thread plays the driver reading it every 10 ms. The callback runs with a
//! counting allocator armed on the capture thread: it must not allocate.
#![cfg(windows)]

use hardmute_backend_windows::capture::{CaptureStream, Packet};
use hardmute_backend_windows::feed::{
    init_header, ring_geometry, CaptureFeed, FeedStats, RING_CHANNELS, RING_FRAMES,
};
use hardmute_backend_windows::{devices, ComApartment};
use hardmute_core::bridge::HostClock;
use hardmute_core::ring::{RingHeader, SampleRing, SharedRing};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

/// Heap operations made inside the capture callback, on the capture thread.
static CALLBACK_OPS: AtomicU64 = AtomicU64::new(0);

struct Ring {
    header: RingHeader,
    slots: Vec<AtomicU32>,
}

#[test]
fn capture_packets_reach_the_ring_without_allocating() {
    let _com = ComApartment::multithreaded().expect("COM MTA");
    let endpoints = devices::capture_endpoints().expect("enumeration");
    let Some(default) = endpoints.iter().find(|e| e.is_default) else {
        println!("SKIPPED: no capture endpoint (wine without the ALSA null device)");
        return;
    };
    let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
    let ring = Arc::new(Ring {
        header: RingHeader::new(0, 0),
        slots: (0..(g.bytes - 32) / 4).map(|_| AtomicU32::new(0)).collect(),
    });
    init_header(&ring.header, g);
    let stats = Arc::new(FeedStats::default());
    let (cb_ring, cb_stats) = (ring.clone(), stats.clone());
    let stream = CaptureStream::start(
        &default.id,
        false,
        move |format| {
            let mut feed = CaptureFeed::new(format, 48_000);
            move |packet: Packet<'_>| {
                let ((), ops) = hardmute_alloc_counter::heap_ops(|| {
                    if let Ok(shared) = SharedRing::attach(&cb_ring.header, &cb_ring.slots) {
                        let clock = HostClock {
                            now: packet.qpc_now,
                            ticks_per_second: packet.qpc_frequency,
                        };
                        feed.on_packet(packet.samples, &mut shared.writer(), clock, 0, &cb_stats);
                    }
                });
                CALLBACK_OPS.fetch_add(ops, Ordering::Relaxed);
            }
        },
        |_| {},
    )
    .expect("the default input opens");
    // Play the driver: read 10 ms of device frames every 10 ms for 1.5 s.
    let mut reader = SharedRing::attach(&ring.header, &ring.slots)
        .unwrap()
        .reader();
    let mut out = vec![1.0f32; 480 * RING_CHANNELS];
    let mut read = 0usize;
    for _ in 0..150 {
        std::thread::sleep(Duration::from_millis(10));
        read += reader.pop_into(&mut out);
    }
    stream.stop();
    let packets = stats.packets.load(Ordering::Relaxed);
    println!(
        "{packets} packets; frames in {} out {}; read {} samples; running packets {}; overruns {}; dropped idle {}",
        stats.frames_in.load(Ordering::Relaxed),
        stats.frames_out.load(Ordering::Relaxed),
        read,
        stats.device_running_packets.load(Ordering::Relaxed),
        stats.overruns.load(Ordering::Relaxed),
        stats.dropped_idle.load(Ordering::Relaxed),
    );
    assert!(packets >= 30, "packets arrived");
    assert_eq!(
        CALLBACK_OPS.load(Ordering::Relaxed),
        0,
        "the capture callback allocated"
    );
    assert!(read > 0, "the reader got samples from the capture");
    // Every packet that follows a read sees the ring consumed and stamps the device cycle;
    // with 150 reads, most must have been seen.
    assert!(
        stats.device_running_packets.load(Ordering::Relaxed) >= 100,
        "the feed saw the reader consume"
    );
    // No assertion on overruns: wine's ALSA null device is not clocked and delivers several
    // times real time, which no drift controller can absorb (they are counted, as they must be).
    // Clock-drift behaviour is covered by hardmute-core's drift simulation.
}
