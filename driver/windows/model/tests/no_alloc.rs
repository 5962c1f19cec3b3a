//! Realtime safety of the timer tick (invariant 6): a counting global allocator proves the
//! tick allocates nothing, in every format, muted and unmuted, with and without a bridge.
mod common;

use common::*;
use hardmute_alloc_counter::heap_ops;
use hardmute_core::control::{Authority, ChangeSource, ControlBlock};
use hardmute_windows_model::packets::PacketBoard;
use hardmute_windows_model::stream::NoBridge;

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

/// Heap operations `f` makes on this thread, accumulated into `total`.
fn armed<T>(total: &mut u64, f: impl FnOnce() -> T) -> T {
    let (r, ops) = heap_ops(f);
    *total += ops;
    r
}

#[test]
fn the_timer_tick_never_allocates() {
    // Prove the counter works before trusting a zero.
    let mut probe = 0;
    armed(&mut probe, || drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(probe, 2, "counting allocator is live (alloc + free)");

    for f in all_formats() {
        let ctl = ControlBlock::new(true);
        let bridge = Bridge::new(96_000, 2);
        let mut port = SimPort::open(f, f.byte_rate() / 50, 2);
        let samples: Vec<f32> = (0..2_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut in_tick = 0;
        let board = PacketBoard::new();
        for i in 0..300u64 {
            if i == 100 {
                ctl.set_muted(false, ChangeSource::Hotkey, Authority::Owner)
                    .unwrap();
            }
            bridge.push(&samples[..200]);
            port.now += QPC_FREQ / 1000 + (i % 7) * 1_000;
            let (now, buffer) = (port.now, &mut port.buffer);
            let mut reader = bridge.ring().reader();
            armed(&mut in_tick, || {
                if i % 5 == 0 {
                    port.stream.tick(now, &ctl, &mut NoBridge, 2, buffer);
                } else {
                    port.stream.tick(now, &ctl, &mut reader, 2, buffer);
                }
                port.stream.position();
                port.stream.last_packet();
                // The glue publishes the packet facts from the timer callback too.
                board.publish(&port.stream);
            });
        }
        assert_eq!(in_tick, 0, "{f:?}: allocation in the tick");
    }
}
