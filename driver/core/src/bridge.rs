//! The bridge's side of the ring, for bridges on another clock than the device (Windows WASAPI,
//! macOS AudioUnit): convert whatever the physical mic delivers, resample it to the device rate
//! with the drift correction, push it into the ring, and steer the correction from the fill
//! level measured at a common instant. The platform glue only has to call [`Feeder::push`] from
//! its capture callback with the host clock (QPC, mach_absolute_time).
//!
//! While no app is reading (the device's last cycle is old), the ring is topped up to its target
//! and the rest dropped, so an app that starts reading gets target latency at once, not a full
//! ring of old audio.

use crate::control::ControlBlock;
use crate::convert::convert;
use crate::drift::{DriftController, Resampler, MAX_CHANNELS};
use crate::ring::RingWriter;
use crate::sample::Sample;

/// Input frames converted per step: bounds the scratch buffers, not the callback size.
const CHUNK: usize = 256;

/// Where the feeder writes: a ring's producer end.
pub trait SampleSink {
    /// Samples written and not yet read.
    fn used(&self) -> usize;
    /// Writes whole frames; returns the samples written.
    fn push(&mut self, samples: &[f32]) -> usize;
}

impl SampleSink for RingWriter<'_> {
    fn used(&self) -> usize {
        self.capacity() - self.free()
    }
    fn push(&mut self, samples: &[f32]) -> usize {
        RingWriter::push(self, samples)
    }
}

/// Adapts an in-process `ringbuf` producer of `f32` samples.
pub struct RbProducer<P>(pub P);

impl<P: ringbuf::traits::Producer<Item = f32>> SampleSink for RbProducer<P> {
    fn used(&self) -> usize {
        ringbuf::traits::Observer::occupied_len(&self.0)
    }
    fn push(&mut self, samples: &[f32]) -> usize {
        self.0.push_slice(samples)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeederConfig {
    pub in_rate: u32,
    pub in_channels: usize,
    pub dev_rate: u32,
    pub dev_channels: usize,
    /// The device's cycle length in frames (its timer period).
    pub dev_period: usize,
    /// Ring fill to hold, in device frames (at least a device period plus scheduling margin).
    pub target_fill: usize,
}

/// The host clock as the platform reads it.
#[derive(Clone, Copy, Debug)]
pub struct HostClock {
    pub now: u64,
    pub ticks_per_second: u64,
}

/// What one push did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pushed {
    pub frames_in: usize,
    pub frames_out: usize,
    /// Frames not written because no app was reading and the ring held its target.
    pub dropped_idle: usize,
    /// The ring was full while the device was running: audio lost, counted in the control block.
    pub overrun: bool,
    pub correction: f64,
}

pub struct Feeder {
    cfg: FeederConfig,
    resampler: Resampler,
    controller: DriftController,
    converted: [f32; CHUNK * MAX_CHANNELS],
    resampled: [f32; 2 * CHUNK * MAX_CHANNELS],
    correction: f64,
}

impl Feeder {
    /// Channel counts are clamped to 1..=MAX_CHANNELS.
    pub fn new(cfg: FeederConfig) -> Self {
        let controller = DriftController::new(cfg.target_fill as f64, cfg.dev_rate as f64);
        Self::with_controller(cfg, controller)
    }

    pub fn with_controller(mut cfg: FeederConfig, controller: DriftController) -> Self {
        cfg.in_channels = cfg.in_channels.clamp(1, MAX_CHANNELS);
        cfg.dev_channels = cfg.dev_channels.clamp(1, MAX_CHANNELS);
        Feeder {
            resampler: Resampler::new(cfg.dev_channels, cfg.in_rate, cfg.dev_rate),
            controller,
            converted: [0.0; CHUNK * MAX_CHANNELS],
            resampled: [0.0; 2 * CHUNK * MAX_CHANNELS],
            correction: 0.0,
            cfg,
        }
    }

    pub fn config(&self) -> FeederConfig {
        self.cfg
    }

    /// Realtime: feeds one capture callback's samples (interleaved, `in_channels`).
    pub fn push<S: Sample, K: SampleSink>(
        &mut self,
        captured: &[S],
        sink: &mut K,
        ctl: &ControlBlock,
        clock: HostClock,
    ) -> Pushed {
        let (ic, dc) = (self.cfg.in_channels, self.cfg.dev_channels);
        let tps = clock.ticks_per_second.max(1);
        let last_cycle = ctl.cycle_host_time();
        let since_cycle = clock.now.saturating_sub(last_cycle);
        let period_ticks = (self.cfg.dev_period as u64 * tps) / self.cfg.dev_rate.max(1) as u64;
        let running = last_cycle != 0 && since_cycle <= 4 * period_ticks.max(1);
        let mut p = Pushed::default();

        for chunk in captured.chunks(CHUNK * ic) {
            let frames = convert(chunk, ic, &mut self.converted, dc);
            p.frames_in += frames;
            let mut pos = 0;
            while pos < frames {
                let (used, made) = self
                    .resampler
                    .process(&self.converted[pos * dc..frames * dc], &mut self.resampled);
                pos += used;
                let mut out = &self.resampled[..made * dc];
                if !running {
                    let room = (self.cfg.target_fill * dc).saturating_sub(sink.used()) / dc * dc;
                    p.dropped_idle += (out.len() - out.len().min(room)) / dc;
                    out = &out[..out.len().min(room)];
                }
                let written = sink.push(out);
                p.frames_out += written / dc;
                if written < out.len() {
                    p.overrun = true;
                }
                if used == 0 && made == 0 {
                    break; // cannot happen with a non-empty scratch; never spin
                }
            }
        }
        if p.overrun {
            ctl.note_overrun();
        }
        if running && p.frames_in > 0 {
            // The fill at a common instant: minus what the device consumed since its last cycle.
            let consumed = since_cycle as f64 * self.cfg.dev_rate as f64 / tps as f64;
            let fill = (sink.used() / dc) as f64 - consumed;
            let dt = p.frames_in as f64 / self.cfg.in_rate.max(1) as f64;
            self.correction = self.controller.update(fill, dt);
            self.resampler.set_correction(self.correction);
        }
        p.correction = self.correction;
        ctl.heartbeat();
        p
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::ring::{RingHeader, SampleRing, SharedRing};
    use core::sync::atomic::AtomicU32;
    use std::vec::Vec;

    fn cfg() -> FeederConfig {
        FeederConfig {
            in_rate: 48_000,
            in_channels: 1,
            dev_rate: 48_000,
            dev_channels: 2,
            dev_period: 480,
            target_fill: 600,
        }
    }

    const CLOCK: HostClock = HostClock {
        now: 1_000_000_000,
        ticks_per_second: 1_000_000_000,
    };

    #[test]
    fn idle_device_holds_the_ring_at_target_then_running_fills_and_counts_overruns() {
        let slots: Vec<AtomicU32> = (0..4000).map(|_| AtomicU32::new(0)).collect();
        let h = RingHeader::new(4000, 2);
        let ring = SharedRing::attach(&h, &slots).unwrap();
        let (mut w, r) = (ring.writer(), ring.reader());
        let ctl = ControlBlock::new(false);
        let mut f = Feeder::new(cfg());
        let mic = [0.5f32; 480];
        // No app reading (never stamped): topped up to 600 frames, the rest dropped.
        let p1 = f.push(&mic[..], &mut w, &ctl, CLOCK);
        let p2 = f.push(&mic[..], &mut w, &ctl, CLOCK);
        assert_eq!(r.len(), 600 * 2);
        assert_eq!(p1.frames_out + p2.frames_out, 600);
        assert_eq!(p1.dropped_idle + p2.dropped_idle, 960 - 600);
        assert!(!p1.overrun && !p2.overrun);
        // Mono in, stereo out: the mic on both channels (after the resampler's 2-frame delay).
        let mut out = [0.0f32; 1200];
        let mut rd = r;
        rd.pop_into(&mut out);
        assert_eq!(&out[20..24], &[0.5, 0.5, 0.5, 0.5]);
        // The device runs (stamped just now) but never reads: the ring fills, then overruns.
        ctl.stamp_cycle(CLOCK.now);
        let mut overruns = 0;
        for _ in 0..10 {
            overruns += f.push(&mic[..], &mut w, &ctl, CLOCK).overrun as u64;
        }
        // 4000 samples = 2000 frames: the 5th push of 480 frames no longer fits.
        assert_eq!(overruns, 6);
        assert_eq!(rd.len(), 4000);
        assert_eq!(ctl.snapshot().overruns, overruns);
        assert!(ctl.snapshot().bridge_heartbeat >= 12);
    }

    #[test]
    fn a_stale_cycle_stamp_counts_as_idle() {
        let slots: Vec<AtomicU32> = (0..4000).map(|_| AtomicU32::new(0)).collect();
        let h = RingHeader::new(4000, 2);
        let ring = SharedRing::attach(&h, &slots).unwrap();
        let (mut w, r) = (ring.writer(), ring.reader());
        let ctl = ControlBlock::new(false);
        ctl.stamp_cycle(1); // a second ago: far more than 4 periods
        let mut f = Feeder::new(cfg());
        for _ in 0..5 {
            assert!(!f.push(&[0.1f32; 480][..], &mut w, &ctl, CLOCK).overrun);
        }
        assert_eq!(r.len(), 1200);
    }
}
