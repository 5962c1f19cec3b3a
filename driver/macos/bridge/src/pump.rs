//! Physical mic -> feed device, across two clocks.
//!
//! The capture callback (physical mic's clock) converts to the feed's channel count, resamples to
//! the feed's rate with a ratio trimmed by `hardmute_core::drift::DriftController` from the staging
//! ring's fill level, and pushes into an SPSC ring. The feed device's render callback (the plug-in's
//! clock) pulls from it; when it is short it plays zeros (never repeats). Both sides are realtime-safe:
//! fixed scratch buffers, no allocation, no lock.

use hardmute_core::convert::convert;
use hardmute_core::drift::{DriftController, Resampler, MAX_CHANNELS};
use ringbuf::traits::{Consumer as _, Observer as _, Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Input frames handled per conversion step (bounds the scratch buffers, not the callback size).
const CHUNK: usize = 256;

#[derive(Clone, Copy, Debug)]
pub struct PumpConfig {
    pub in_rate: u32,
    pub in_channels: usize,
    pub out_rate: u32,
    pub out_channels: usize,
    /// Fill the controller holds, in feed frames (latency of the staging ring).
    pub target_fill_frames: usize,
    /// Ring capacity in feed frames.
    pub capacity_frames: usize,
}

/// Counters both sides update (read them off the realtime path).
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpStats {
    pub overruns: u64,
    pub underruns: u64,
}

pub struct CaptureSide {
    ring: HeapProd<f32>,
    resampler: Resampler,
    ctrl: DriftController,
    in_ch: usize,
    out_ch: usize,
    last_time_s: Option<f64>,
    converted: [f32; CHUNK * MAX_CHANNELS],
    resampled: [f32; 2 * CHUNK * MAX_CHANNELS],
    pub overruns: u64,
}

pub struct FeedSide {
    ring: HeapCons<f32>,
    pub underruns: u64,
}

pub fn pump(cfg: PumpConfig) -> (CaptureSide, FeedSide) {
    let in_ch = cfg.in_channels.clamp(1, MAX_CHANNELS);
    let out_ch = cfg.out_channels.clamp(1, MAX_CHANNELS);
    let (prod, cons) = HeapRb::<f32>::new(cfg.capacity_frames.max(1) * out_ch).split();
    let capture = CaptureSide {
        ring: prod,
        resampler: Resampler::new(out_ch, cfg.in_rate, cfg.out_rate),
        ctrl: DriftController::new(cfg.target_fill_frames as f64, f64::from(cfg.out_rate)),
        in_ch,
        out_ch,
        last_time_s: None,
        converted: [0.0; CHUNK * MAX_CHANNELS],
        resampled: [0.0; 2 * CHUNK * MAX_CHANNELS],
        overruns: 0,
    };
    (
        capture,
        FeedSide {
            ring: cons,
            underruns: 0,
        },
    )
}

impl CaptureSide {
    /// From the capture callback: interleaved `input`, captured at host time `now_s` (seconds).
    pub fn push(&mut self, input: &[f32], now_s: f64) {
        let fill = (self.ring.occupied_len() / self.out_ch) as f64;
        if let Some(last) = self.last_time_s {
            let dt = (now_s - last).max(1e-6);
            let correction = self.ctrl.update(fill, dt);
            self.resampler.set_correction(correction);
        }
        self.last_time_s = Some(now_s);
        for chunk in input.chunks(CHUNK * self.in_ch) {
            let frames = convert(chunk, self.in_ch, &mut self.converted, self.out_ch);
            let mut src = &self.converted[..frames * self.out_ch];
            while !src.is_empty() {
                let (used, made) = self.resampler.process(src, &mut self.resampled);
                let made = &self.resampled[..made * self.out_ch];
                if self.ring.push_slice(made) < made.len() {
                    self.overruns += 1;
                }
                if used == 0 {
                    break;
                }
                src = &src[used * self.out_ch..];
            }
        }
    }

    /// Forget the clock history (after the capture device changed).
    pub fn reset(&mut self) {
        self.ctrl.reset();
        self.last_time_s = None;
    }
}

impl FeedSide {
    /// From the feed device's render callback: fills `out`; zeros where the ring is short.
    pub fn pull(&mut self, out: &mut [f32]) {
        let n = self.ring.pop_slice(out);
        if n < out.len() {
            out[n..].fill(0.0);
            self.underruns += 1;
        }
    }

    pub fn fill_samples(&self) -> usize {
        self.ring.occupied_len()
    }

    /// Drop everything queued (release-on-mute, device change).
    pub fn flush(&mut self) {
        let n = self.ring.occupied_len();
        self.ring.skip(n);
    }
}
