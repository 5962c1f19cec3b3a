//! The bridge pump across two clocks: ±1000 ppm between the physical mic and the feed device for
//! four simulated minutes gives no underrun or overrun after settling, bounded fill, and no allocation
//! in either callback (the capture side's level meter included, which reads the mic's level).

use hardmute_backend_macos::pump::{pump, PumpConfig};
use hardmute_core::bridge::HostClock;

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

/// The host clock at simulated time `t_s` (nanosecond ticks).
fn clock(t_s: f64) -> HostClock {
    HostClock {
        now: 1_000_000_000 + (t_s * 1e9) as u64,
        ticks_per_second: 1_000_000_000,
    }
}

struct Outcome {
    underruns_after_settle: u64,
    overruns_after_settle: u64,
    min_fill: usize,
    max_fill: usize,
    allocations: u64,
    last_out: Vec<f32>,
    level: hardmute_core::level::LevelReading,
}

/// Mic at `in_rate` (1 + ppm) delivering `in_period` frames; feed pulling 512 frames at 48 kHz.
fn run(in_rate: u32, in_ch: usize, ppm: f64, seconds: f64) -> Outcome {
    const OUT_RATE: u32 = 48_000;
    const OUT_CH: usize = 2;
    const OUT_PERIOD: usize = 512;
    let in_period = (in_rate / 100) as usize; // 10 ms callbacks
    let cfg = PumpConfig {
        in_rate,
        in_channels: in_ch,
        out_rate: OUT_RATE,
        out_channels: OUT_CH,
        out_period: OUT_PERIOD,
        target_fill_frames: 2 * OUT_PERIOD,
        capacity_frames: 16 * OUT_PERIOD,
    };
    let (mut cap, mut feed) = pump(cfg);
    let level = std::sync::Arc::clone(cap.level_tap());
    let input = vec![0.5f32; in_period * in_ch];
    let mut out = vec![0.0f32; OUT_PERIOD * OUT_CH];
    let in_dt = in_period as f64 / (f64::from(in_rate) * (1.0 + ppm * 1e-6));
    let out_dt = OUT_PERIOD as f64 / f64::from(OUT_RATE);
    let (mut t_in, mut t_out) = (0.0f64, out_dt * 2.5);
    let settle = 60.0;
    let (mut under0, mut over0) = (None, None);
    let (mut min_fill, mut max_fill) = (usize::MAX, 0);
    let before = hardmute_alloc_counter::heap_ops_on_this_thread();
    while t_in.min(t_out) < seconds {
        if t_in <= t_out {
            cap.push(&input, clock(t_in));
            t_in += in_dt;
        } else {
            feed.pull(&mut out, clock(t_out).now);
            t_out += out_dt;
            if t_out > settle {
                under0.get_or_insert(feed.underruns);
                over0.get_or_insert(cap.overruns);
                let f = feed.fill_samples() / OUT_CH;
                min_fill = min_fill.min(f);
                max_fill = max_fill.max(f);
            }
        }
    }
    let allocations = hardmute_alloc_counter::heap_ops_on_this_thread() - before;
    Outcome {
        underruns_after_settle: feed.underruns - under0.unwrap(),
        overruns_after_settle: cap.overruns - over0.unwrap(),
        min_fill,
        max_fill,
        allocations,
        last_out: out,
        level: level.read(),
    }
}

#[test]
fn drift_of_plus_minus_1000_ppm_is_absorbed_without_underruns() {
    for (rate, ch, ppm) in [
        (48_000, 1, 1000.0),
        (48_000, 2, -1000.0),
        (44_100, 1, 500.0),
        (96_000, 2, -1000.0),
    ] {
        let o = run(rate, ch, ppm, 240.0);
        assert_eq!(o.allocations, 0, "callbacks allocated");
        assert_eq!(
            o.underruns_after_settle, 0,
            "{rate} Hz x{ch} {ppm} ppm: underruns"
        );
        assert_eq!(
            o.overruns_after_settle, 0,
            "{rate} Hz x{ch} {ppm} ppm: overruns"
        );
        // Bounded latency: within a few periods of the target (1024 frames).
        assert!(
            o.min_fill > 0 && o.max_fill < 3 * 1024,
            "{rate} {ppm}: fill {}..{}",
            o.min_fill,
            o.max_fill
        );
        // The capture side metered the mic: 0.5 constant, a window per 50 ms of it (one in
        // progress may be left over, the simulated mic runs at 1 +- ppm).
        assert_eq!(
            (o.level.peak, o.level.rms),
            (0.5, 0.5),
            "{rate}: {:?}",
            o.level
        );
        assert!(
            (o.level.windows as i64 - 240 * 20).abs() <= 6,
            "{rate} {ppm}: {} windows",
            o.level.windows
        );
        // Converted, resampled audio of a constant stays that constant.
        assert!(
            o.last_out.iter().all(|s| (s - 0.5).abs() < 1e-3),
            "{:?}",
            &o.last_out[..4]
        );
    }
}
