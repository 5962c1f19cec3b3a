//! Realtime safety of the timer tick (invariant 6): a counting global allocator proves the
//! tick allocates nothing, in every format, muted and unmuted, with and without a bridge.
mod common;

use common::*;
use hardmute_core::control::{Authority, ChangeSource, ControlBlock};
use hardmute_wavert_model::stream::NoBridge;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local!(static ARMED: Cell<bool> = const { Cell::new(false) });

// SAFETY: forwards to the system allocator unchanged; only counts calls on armed threads.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(|a| a.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.with(|a| a.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for alloc/dealloc.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

fn armed<T>(f: impl FnOnce() -> T) -> T {
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    r
}

#[test]
fn the_timer_tick_never_allocates() {
    // Prove the counter works before trusting a zero.
    let before = ALLOCS.load(Ordering::Relaxed);
    armed(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        before + 1,
        "counting allocator is live"
    );

    for f in all_formats() {
        let ctl = ControlBlock::new(true);
        let bridge = Bridge::new(96_000, 2);
        let mut port = SimPort::open(f, f.byte_rate() / 50, 2);
        let samples: Vec<f32> = (0..2_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let start = ALLOCS.load(Ordering::Relaxed);
        for i in 0..300u64 {
            if i == 100 {
                ctl.set_muted(false, ChangeSource::Hotkey, Authority::Owner)
                    .unwrap();
            }
            bridge.push(&samples[..200]);
            port.now += QPC_FREQ / 1000 + (i % 7) * 1_000;
            let (now, buffer) = (port.now, &mut port.buffer);
            let mut reader = bridge.ring().reader();
            armed(|| {
                if i % 5 == 0 {
                    port.stream.tick(now, &ctl, &mut NoBridge, 2, buffer);
                } else {
                    port.stream.tick(now, &ctl, &mut reader, 2, buffer);
                }
                port.stream.position();
                port.stream.last_packet();
            });
        }
        assert_eq!(
            ALLOCS.load(Ordering::Relaxed),
            start,
            "{f:?}: allocation in the tick"
        );
    }
}
