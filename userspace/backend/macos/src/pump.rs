//! Physical mic -> feed device, across two clocks.
//!
//! The capture callback (the physical mic's clock) hands its samples to
//! `hardmute_core::bridge::Feeder`: channel conversion, resampling to the feed's rate with the ratio
//! trimmed from the staging ring's fill level (measured at a common host-clock instant), push. The
//! feed device's render callback (the plug-in's clock) stamps its cycle time and pulls; when the ring
//! is short it plays zeros (never repeats). Both sides are realtime-safe: fixed scratch buffers,
//! atomics, no allocation, no lock.
//!
//! The capture side also meters what it captures ([`LevelTap`], the core's `level` module) for
//! the panel's level feed. The gate runs in the plug-in inside coreaudiod, out of the daemon's
//! reach, so this is the room's level even while muted: the daemon reports it only while the
//! plug-in says live (`hardmuted`'s `backend::captured_level`).

use hardmute_core::bridge::{Feeder, FeederConfig, HostClock, RbProducer};
use hardmute_core::level::{LevelMeter, LevelTap};
use hardmute_core::ControlBlock;
use ringbuf::traits::{Consumer as _, Observer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub struct PumpConfig {
    pub in_rate: u32,
    pub in_channels: usize,
    pub out_rate: u32,
    pub out_channels: usize,
    /// The feed callback's nominal length in frames.
    pub out_period: usize,
    /// Fill the controller holds, in feed frames (latency of the staging ring).
    pub target_fill_frames: usize,
    /// Ring capacity in feed frames.
    pub capacity_frames: usize,
}

pub struct CaptureSide {
    feeder: Feeder,
    ring: RbProducer<HeapProd<f32>>,
    timing: Arc<ControlBlock>,
    meter: LevelMeter<Arc<LevelTap>>,
    channels: usize,
    pub overruns: u64,
}

pub struct FeedSide {
    ring: HeapCons<f32>,
    timing: Arc<ControlBlock>,
    pub underruns: u64,
}

/// The staging ring and its two ends. Allocates; call off the realtime path.
pub fn pump(cfg: PumpConfig) -> (CaptureSide, FeedSide) {
    let feeder = Feeder::new(FeederConfig {
        in_rate: cfg.in_rate,
        in_channels: cfg.in_channels,
        dev_rate: cfg.out_rate,
        dev_channels: cfg.out_channels,
        dev_period: cfg.out_period,
        target_fill: cfg.target_fill_frames,
    });
    let out_ch = feeder.config().dev_channels;
    let (prod, cons) = HeapRb::<f32>::new(cfg.capacity_frames.max(1) * out_ch).split();
    // Only the cycle time stamps and counters of this block are used (the mute state lives in
    // the plug-in, not here).
    let timing = Arc::new(ControlBlock::new(false));
    let capture = CaptureSide {
        feeder,
        ring: RbProducer(prod),
        timing: Arc::clone(&timing),
        meter: LevelMeter::new(Arc::new(LevelTap::new()), cfg.in_rate),
        channels: cfg.in_channels.max(1),
        overruns: 0,
    };
    (
        capture,
        FeedSide {
            ring: cons,
            timing,
            underruns: 0,
        },
    )
}

impl CaptureSide {
    /// From the capture callback: interleaved `input`, with the host clock read in the callback.
    pub fn push(&mut self, input: &[f32], clock: HostClock) {
        self.meter.add(input, self.channels);
        let pushed = self.feeder.push(input, &mut self.ring, &self.timing, clock);
        if pushed.overrun {
            self.overruns += 1;
        }
    }
}

impl CaptureSide {
    /// Where the capture side publishes the captured input's level (clone it before the
    /// capture side moves into its callback).
    pub fn level_tap(&self) -> &Arc<LevelTap> {
        self.meter.tap()
    }
}

impl FeedSide {
    /// From the feed device's render callback at host time `now`: fills `out`; zeros where the
    /// ring is short.
    pub fn pull(&mut self, out: &mut [f32], now: u64) {
        self.timing.stamp_cycle(now);
        let n = self.ring.pop_slice(out);
        if n < out.len() {
            out[n..].fill(0.0);
            self.underruns += 1;
        }
    }

    pub fn fill_samples(&self) -> usize {
        self.ring.occupied_len()
    }

    /// Drop everything queued (device change).
    pub fn flush(&mut self) {
        let n = self.ring.occupied_len();
        self.ring.skip(n);
    }
}
