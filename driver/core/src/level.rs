//! The realtime-safe level meter: peak and RMS of a signal per window of about 50 ms,
//! published through atomics for a meter shown off the realtime path.
//!
//! [`LevelMeter`] runs on the realtime thread (plain fields, no allocation, lock, syscall or
//! panic); [`LevelTap`] is where it publishes (one writer, any number of readers, plain atomic
//! loads and stores, so the writer never waits).
//!
//! Where a backend meters decides what the meter can leak. The Linux filter meters the gate's
//! *output*, not the raw input: while muted that is the exact zeros apps get, so the meter
//! cannot carry anything about the room whatever the daemon does with it; while live it is what
//! apps already hear. Where the gate runs out of reach (Windows: in the kernel driver; macOS:
//! in the HAL plugin inside coreaudiod) the bridge can only meter what it captured, which is
//! the room even while muted; those backends report such a reading only while the driver says
//! live and a zero reading otherwise (see `hardmuted`'s backends).

use core::ops::Deref;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sample::Sample;

/// Level windows per second (the daemon sends at most this many level events).
pub const LEVEL_WINDOWS_PER_SEC: u32 = 20;

/// The last level window a realtime meter published.
#[derive(Debug, Default)]
pub struct LevelTap {
    peak_bits: AtomicU32,
    rms_bits: AtomicU32,
    /// Windows published so far: a reader sees whether a new one arrived since its last look.
    windows: AtomicU64,
}

/// One published window: linear full scale, all channels together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LevelReading {
    pub peak: f32,
    pub rms: f32,
    /// How many windows had been published when this one was read (0 = none yet).
    pub windows: u64,
}

impl LevelTap {
    pub const fn new() -> Self {
        LevelTap {
            peak_bits: AtomicU32::new(0),
            rms_bits: AtomicU32::new(0),
            windows: AtomicU64::new(0),
        }
    }

    fn publish(&self, peak: f32, rms: f32) {
        self.peak_bits.store(peak.to_bits(), Ordering::Relaxed);
        self.rms_bits.store(rms.to_bits(), Ordering::Relaxed);
        self.windows.fetch_add(1, Ordering::Release);
    }

    /// The latest window. A window published while this reads may mix two windows' values;
    /// a meter does not care, and the writer never waits for a reader.
    pub fn read(&self) -> LevelReading {
        let windows = self.windows.load(Ordering::Acquire);
        LevelReading {
            peak: f32::from_bits(self.peak_bits.load(Ordering::Relaxed)),
            rms: f32::from_bits(self.rms_bits.load(Ordering::Relaxed)),
            windows,
        }
    }
}

/// Accumulates one window of frames on the realtime thread and publishes it into its tap.
/// `T` is whatever keeps the tap alive (`Arc<LevelTap>`, `&LevelTap`).
#[derive(Debug)]
pub struct LevelMeter<T: Deref<Target = LevelTap>> {
    tap: T,
    window_frames: usize,
    frames: usize,
    peak: f32,
    sum_squares: f64,
    samples: usize,
}

impl<T: Deref<Target = LevelTap>> LevelMeter<T> {
    /// A meter publishing one window per 1/[`LEVEL_WINDOWS_PER_SEC`] s of `rate_hz` frames.
    pub fn new(tap: T, rate_hz: u32) -> Self {
        LevelMeter {
            tap,
            window_frames: (rate_hz / LEVEL_WINDOWS_PER_SEC).max(1) as usize,
            frames: 0,
            peak: 0.0,
            sum_squares: 0.0,
            samples: 0,
        }
    }

    /// Where this meter publishes.
    pub fn tap(&self) -> &T {
        &self.tap
    }

    /// Meters interleaved f32 frames of `channels` samples; publishes every full window.
    pub fn add(&mut self, interleaved: &[f32], channels: usize) {
        self.add_samples(interleaved, channels);
    }

    /// As [`LevelMeter::add`] for any sample format (converted to full scale per sample).
    pub fn add_samples<S: Sample>(&mut self, interleaved: &[S], channels: usize) {
        for frame in interleaved.chunks(channels.max(1)) {
            for &sample in frame {
                let sample = sample.to_f32();
                // NaN never wins `max`, so a corrupt sample cannot poison the peak.
                self.peak = self.peak.max(sample.abs());
                self.sum_squares += f64::from(sample) * f64::from(sample);
            }
            self.samples += frame.len();
            self.frames += 1;
            if self.frames >= self.window_frames {
                self.finish_window();
            }
        }
    }

    /// Meters `frames` frames of exact silence (a packet the device flagged silent).
    pub fn add_silence(&mut self, frames: usize, channels: usize) {
        let mut left = frames;
        while left > 0 {
            let n = left.min(self.window_frames - self.frames);
            self.frames += n;
            self.samples += n * channels.max(1);
            left -= n;
            if self.frames >= self.window_frames {
                self.finish_window();
            }
        }
    }

    fn finish_window(&mut self) {
        let rms = if self.samples == 0 {
            0.0
        } else {
            sqrt(self.sum_squares / self.samples as f64) as f32
        };
        self.tap.publish(self.peak.min(1.0), rms.min(1.0));
        self.frames = 0;
        self.peak = 0.0;
        self.sum_squares = 0.0;
        self.samples = 0;
    }
}

/// Square root without `std` (core has none on stable): Newton's method from an exponent-halving
/// first guess; a fixed number of steps, no branches that depend on the data beyond the edges.
fn sqrt(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    if x == f64::INFINITY {
        return x;
    }
    let mut y = f64::from_bits((x.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..6 {
        y = 0.5 * (y + x / y);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_matches_known_roots() {
        for (x, want) in [
            (0.25, 0.5),
            (1.0, 1.0),
            (2.0, core::f64::consts::SQRT_2),
            (1e-8, 1e-4),
        ] {
            let got = sqrt(x);
            assert!((got - want).abs() <= want * 1e-12, "sqrt({x}) = {got}");
        }
        assert_eq!(sqrt(0.0), 0.0);
        assert_eq!(sqrt(-1.0), 0.0);
        assert_eq!(sqrt(f64::NAN), 0.0);
    }

    #[test]
    fn a_window_publishes_peak_and_rms_and_resets() {
        let tap = LevelTap::new();
        let mut meter = LevelMeter::new(&tap, 48_000); // 2400 frames a window
        let half = [0.5f32; 2400 * 2];
        meter.add(&half[..2399 * 2], 2);
        assert_eq!(tap.read().windows, 0, "no window before it is full");
        meter.add(&half[..2], 2);
        let r = tap.read();
        assert_eq!((r.peak, r.windows), (0.5, 1));
        assert!((r.rms - 0.5).abs() < 1e-6, "{r:?}");
        // a square wave of +-0.8 then a silent window
        let square: [f32; 2400] = core::array::from_fn(|i| if i % 2 == 0 { 0.8 } else { -0.8 });
        meter.add(&square, 1);
        let r = tap.read();
        assert_eq!(r.windows, 2);
        assert!(
            (r.peak - 0.8).abs() < 1e-6 && (r.rms - 0.8).abs() < 1e-6,
            "{r:?}"
        );
        meter.add_silence(2400, 1);
        assert_eq!(
            tap.read(),
            LevelReading {
                peak: 0.0,
                rms: 0.0,
                windows: 3
            }
        );
    }

    #[test]
    fn integer_samples_are_metered_at_full_scale_and_clipped_to_one() {
        let tap = LevelTap::new();
        let mut meter = LevelMeter::new(&tap, 20); // one frame a window
        meter.add_samples(&[i16::MIN / 2], 1);
        let r = tap.read();
        assert!(
            (r.peak - 0.5).abs() < 1e-3 && (r.rms - 0.5).abs() < 1e-3,
            "{r:?}"
        );
        meter.add(&[4.0, f32::NAN], 2);
        let r = tap.read();
        assert_eq!(
            (r.peak, r.windows),
            (1.0, 2),
            "clipped, NaN ignored by the peak"
        );
    }
}
