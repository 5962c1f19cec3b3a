//! Keeping a bridge between two clocks in step (Windows, macOS: the physical mic and the virtual
//! device tick on different crystals, up to about ±1000 ppm apart).
//!
//! The bridge pushes into the ring through a [`Resampler`] whose ratio a [`DriftController`]
//! trims from the ring's fill level: a PI controller on the smoothed fill error. No skipping, no
//! resync: the fill level settles at its target, so latency stays bounded and there are no
//! under- or overruns.
//!
//! Why our own resampler: the maintained Rust resamplers (rubato, samplerate) need `std` and
//! allocate at setup, and the core must build for the kernel. A 4-point cubic Hermite interpolator
//! is enough for a ratio within a fraction of a percent of 1 (or a fixed 44.1/48 conversion for
//! speech), fits on a screen, and never allocates.

/// The most channels a [`Resampler`] carries.
pub const MAX_CHANNELS: usize = 8;

/// PI controller from ring fill level to a relative rate correction.
#[derive(Clone, Debug)]
pub struct DriftController {
    target: f64,
    kp: f64,
    ki: f64,
    integral: f64,
    smoothed: f64,
    /// Smoothing time constant in seconds: the fill seen at push time jitters by up to a
    /// period with the phase between the two clocks; the controller must not chase that.
    smoothing_s: f64,
    max_correction: f64,
    started: bool,
}

impl DriftController {
    /// `target_fill` and `rate_hz` in frames of the ring. The loop is critically damped with a
    /// natural frequency of `omega` rad/s (default 0.2: settles in tens of seconds, far slower
    /// than any audible pitch wobble; for ±1000 ppm the fill moves by a few periods at most).
    pub fn new(target_fill: f64, rate_hz: f64) -> Self {
        Self::with_tuning(target_fill, rate_hz, 0.2, 0.5, 0.005)
    }

    pub fn with_tuning(
        target_fill: f64,
        rate_hz: f64,
        omega: f64,
        smoothing_s: f64,
        max_correction: f64,
    ) -> Self {
        // Plant: d(fill)/dt = rate * (drift - correction). With correction = kp*e + ki*∫e the
        // loop is s² + rate*kp*s + rate*ki = 0: critically damped when rate*kp = 2ω, rate*ki = ω².
        DriftController {
            target: target_fill,
            kp: 2.0 * omega / rate_hz,
            ki: omega * omega / rate_hz,
            integral: 0.0,
            smoothed: target_fill,
            smoothing_s,
            max_correction,
            started: false,
        }
    }

    pub fn target(&self) -> f64 {
        self.target
    }

    /// The fill level as the controller sees it, after smoothing.
    pub fn smoothed_fill(&self) -> f64 {
        self.smoothed
    }

    /// Feeds the fill level seen `dt_s` seconds after the previous call and returns the relative
    /// correction to apply: positive means the ring is too full, so consume input faster.
    pub fn update(&mut self, fill: f64, dt_s: f64) -> f64 {
        if !self.started {
            self.smoothed = fill;
            self.started = true;
        }
        let a = dt_s / (self.smoothing_s + dt_s);
        self.smoothed += a * (fill - self.smoothed);
        let err = self.smoothed - self.target;
        let p = self.kp * err;
        // Anti-windup: only integrate while the output is not pinned at its limit.
        let next_integral = self.integral + self.ki * err * dt_s;
        let out = p + next_integral;
        if out.abs() < self.max_correction {
            self.integral = next_integral;
        }
        (p + self.integral).clamp(-self.max_correction, self.max_correction)
    }

    /// Forget history (after a device change or a restart of the bridge).
    pub fn reset(&mut self) {
        self.integral = 0.0;
        self.started = false;
    }
}

/// Streaming 4-point cubic Hermite resampler with an adjustable ratio. Interleaved `f32`.
#[derive(Clone, Debug)]
pub struct Resampler {
    channels: usize,
    history: [[f32; 4]; MAX_CHANNELS],
    /// Position of the next output between history[1] (0.0) and history[2] (1.0).
    phase: f64,
    nominal_step: f64,
    step: f64,
}

impl Resampler {
    /// `channels` is clamped to 1..=MAX_CHANNELS.
    pub fn new(channels: usize, in_rate: u32, out_rate: u32) -> Self {
        let step = in_rate.max(1) as f64 / out_rate.max(1) as f64;
        Resampler {
            channels: channels.clamp(1, MAX_CHANNELS),
            history: [[0.0; 4]; MAX_CHANNELS],
            phase: 0.0,
            nominal_step: step,
            step,
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Input frames consumed per output frame, including the correction.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Applies a relative correction from [`DriftController::update`].
    pub fn set_correction(&mut self, correction: f64) {
        self.step = self.nominal_step * (1.0 + correction);
    }

    /// Resamples interleaved `input` into `out`. Stops when the input is used up or the next
    /// input frame would produce more output than fits. Returns (input frames consumed, output
    /// frames written).
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) -> (usize, usize) {
        let ch = self.channels;
        let out_frames = out.len() / ch;
        let (mut used, mut made) = (0, 0);
        for frame in input.chunks_exact(ch) {
            // How many outputs this input frame yields, to stop before overfilling `out`.
            let mut yields = 0;
            let mut p = self.phase;
            while p < 1.0 {
                yields += 1;
                p += self.step;
            }
            if made + yields > out_frames {
                break;
            }
            for (h, &x) in self.history.iter_mut().zip(frame) {
                h.copy_within(1..4, 0);
                h[3] = x;
            }
            while self.phase < 1.0 {
                let t = self.phase as f32;
                let o = &mut out[made * ch..(made + 1) * ch];
                for (y, h) in o.iter_mut().zip(&self.history) {
                    *y = hermite(h, t);
                }
                made += 1;
                self.phase += self.step;
            }
            self.phase -= 1.0;
            used += 1;
        }
        (used, made)
    }
}

/// Catmull-Rom between p[1] and p[2].
#[inline]
fn hermite(p: &[f32; 4], t: f32) -> f32 {
    let c0 = p[1];
    let c1 = 0.5 * (p[2] - p[0]);
    let c2 = p[0] - 2.5 * p[1] + 2.0 * p[2] - 0.5 * p[3];
    let c3 = 0.5 * (p[3] - p[0]) + 1.5 * (p[1] - p[2]);
    ((c3 * t + c2) * t + c1) * t + c0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unity_ratio_is_a_two_frame_delay() {
        let mut r = Resampler::new(1, 48_000, 48_000);
        let input: [f32; 8] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let mut out = [0.0f32; 8];
        assert_eq!(r.process(&input, &mut out), (8, 8));
        assert_eq!(&out[2..], &input[..6]);
    }

    #[test]
    fn ratio_sets_output_count_and_respects_room() {
        let mut r = Resampler::new(2, 44_100, 48_000);
        let input = [0.25f32; 2 * 441];
        let mut out = [0.0f32; 2 * 600];
        let (used, made) = r.process(&input, &mut out);
        assert_eq!(used, 441);
        assert!((479..=481).contains(&made), "{made}");
        // a DC input stays DC (after the start-up frames)
        assert!(out[2 * 4..2 * made]
            .iter()
            .all(|&x| (x - 0.25).abs() < 1e-6));
        let mut small = [0.0f32; 2 * 10];
        let (used, made) = r.process(&input, &mut small);
        assert_eq!(made, 10);
        assert!(used <= 10);
    }

    #[test]
    fn controller_pushes_the_right_way_and_clamps() {
        let mut c = DriftController::new(960.0, 48_000.0);
        assert!(c.update(2000.0, 0.01) > 0.0, "too full: consume faster");
        let mut c = DriftController::new(960.0, 48_000.0);
        assert!(c.update(100.0, 0.01) < 0.0);
        let mut c = DriftController::with_tuning(960.0, 48_000.0, 10.0, 0.0, 0.005);
        assert_eq!(c.update(1e9, 0.01), 0.005);
    }
}

/// A bridge between two clocks, simulated: the physical mic ticks at `mic_rate × (1 + ppm·10⁻⁶)`,
/// the virtual device at 48 kHz, each in 10 ms periods, in the order their clocks say. The mic
/// side is the real [`crate::bridge::Feeder`] pushing into a [`crate::ring::SharedRing`] over
/// `slots`; the device side stamps its cycle time and delivers through the real gate. Used by the
/// tests, the benchmarks and the drift report. `slots` must hold 16 device periods of samples.
pub mod sim {
    use super::DriftController;
    use crate::bridge::{Feeder, FeederConfig, HostClock};
    use crate::control::ControlBlock;
    use crate::deliver::deliver_from_ring;
    use crate::gate::Gate;
    use crate::ring::{RingHeader, SampleRing, SharedRing};
    use core::sync::atomic::AtomicU32;

    pub const RATE: u32 = 48_000;
    pub const PERIOD: usize = 480;
    pub const TARGET_FILL: usize = PERIOD + PERIOD / 4;
    /// "Settled": the fill at the common instant is within 1 ms of the target.
    pub const SETTLED_WITHIN: f64 = RATE as f64 / 1000.0;
    const NS: u64 = 1_000_000_000;

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct SimConfig {
        pub ppm: f64,
        pub seconds: f64,
        /// Extremes are taken after this time.
        pub settle_s: f64,
        pub mic_rate: u32,
        pub mic_channels: usize,
        pub dev_channels: usize,
    }

    impl SimConfig {
        /// Mono 48 kHz on both sides: the cheapest hour.
        pub fn hour(ppm: f64) -> Self {
            SimConfig {
                ppm,
                seconds: 3600.0,
                settle_s: 60.0,
                mic_rate: RATE,
                mic_channels: 1,
                dev_channels: 1,
            }
        }
    }

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct DriftReport {
        pub periods: u64,
        pub underruns: u64,
        pub overruns: u64,
        /// Extremes of the fill level right after each push (frames), after `settle_s`.
        pub min_fill: usize,
        pub max_fill: usize,
        /// Largest |fill − target| after `settle_s`, frames, measured at the common instant
        /// (the latency the ring adds beyond its target).
        pub worst_deviation: f64,
        /// Time (s) after which the fill stays within [`SETTLED_WITHIN`] of the target.
        pub settled_after_s: f64,
        /// The controller's final correction, ≈ the simulated drift.
        pub final_correction: f64,
    }

    /// Runs the simulation with the default controller.
    pub fn run(cfg: SimConfig, slots: &[AtomicU32]) -> DriftReport {
        run_with(
            DriftController::new(TARGET_FILL as f64, RATE as f64),
            cfg,
            slots,
        )
    }

    /// The same bridge with the correction pinned at zero: the control case.
    pub fn run_uncontrolled(cfg: SimConfig, slots: &[AtomicU32]) -> DriftReport {
        let pinned = DriftController::with_tuning(TARGET_FILL as f64, RATE as f64, 0.2, 0.5, 0.0);
        run_with(pinned, cfg, slots)
    }

    pub fn run_with(ctrl: DriftController, cfg: SimConfig, slots: &[AtomicU32]) -> DriftReport {
        let dc = cfg.dev_channels;
        let cap = (slots.len().min(16 * PERIOD * dc) / dc * dc) as u32;
        let header = RingHeader::new(cap, dc as u32);
        let ring = SharedRing::attach(&header, slots).expect("sim ring");
        let (mut writer, mut reader) = (ring.writer(), ring.reader());
        let ctl = ControlBlock::new(false);
        let mut gate = Gate::new(0);
        let mic_period = (cfg.mic_rate / 100) as usize;
        let mut feeder = Feeder::with_controller(
            FeederConfig {
                in_rate: cfg.mic_rate,
                in_channels: cfg.mic_channels,
                dev_rate: RATE,
                dev_channels: dc,
                dev_period: PERIOD,
                target_fill: TARGET_FILL,
            },
            ctrl,
        );

        let mic_period_s = mic_period as f64 / (cfg.mic_rate as f64 * (1.0 + cfg.ppm * 1e-6));
        let dev_period_s = PERIOD as f64 / RATE as f64;
        // The bridge runs before any app reads (the device starts 100 ms later), as on a desktop.
        let dev_start_s = 0.1;
        let (mut mic_k, mut dev_k) = (0u64, 0u64);
        let mut saw = 0i16;
        let mut input = [0i16; 2 * 960];
        let input = &mut input[..mic_period * cfg.mic_channels.min(2)];
        let mut out = [0.0f32; 2 * PERIOD];
        let out = &mut out[..PERIOD * dc];
        let mut rep = DriftReport {
            min_fill: usize::MAX,
            ..Default::default()
        };
        let mut last_outside = 0.0;
        loop {
            let t_mic = mic_k as f64 * mic_period_s;
            let t_dev = dev_start_s + dev_k as f64 * dev_period_s;
            let t = t_mic.min(t_dev);
            if t >= cfg.seconds + dev_start_s {
                break;
            }
            // +1: a stamp of 0 means "never ran".
            let now = (t * NS as f64) as u64 + 1;
            if t_mic <= t_dev {
                for x in input.iter_mut() {
                    *x = saw;
                    saw = saw.wrapping_add(97);
                }
                let pushed = feeder.push(
                    &input[..],
                    &mut writer,
                    &ctl,
                    HostClock {
                        now,
                        ticks_per_second: NS,
                    },
                );
                rep.final_correction = pushed.correction;
                if dev_k > 0 {
                    let fill = reader.len() / dc;
                    let since = t - (dev_start_s + (dev_k - 1) as f64 * dev_period_s);
                    let dev = (fill as f64 - since * RATE as f64 - TARGET_FILL as f64).abs();
                    if dev > SETTLED_WITHIN {
                        last_outside = t;
                    }
                    if t >= cfg.settle_s {
                        rep.worst_deviation = rep.worst_deviation.max(dev);
                        rep.min_fill = rep.min_fill.min(fill);
                        rep.max_fill = rep.max_fill.max(fill);
                    }
                }
                mic_k += 1;
            } else {
                ctl.stamp_cycle(now);
                deliver_from_ring(&ctl, &mut gate, &mut reader, &mut out[..], dc);
                dev_k += 1;
            }
        }
        let snap = ctl.snapshot();
        rep.periods = dev_k;
        rep.underruns = snap.underruns;
        rep.overruns = snap.overruns;
        rep.settled_after_s = last_outside;
        rep
    }
}
