//! The simulated backend: the real hardmute-core delivery path, in-process, on a virtual clock.
//!
//! Per device cycle (one period of `period` frames):
//! 1. the fake physical mic (the bridge) pushes the next period of the clip into the bridge ring
//!    (a `ringbuf` wrapped in [`hardmute_core::ring::RbConsumer`], as the macOS plugin does);
//! 2. the condition's path runs; for HardMute that is
//!    [`hardmute_core::deliver::deliver_from_ring`] with a hard-muted [`ControlBlock`];
//! 3. the fake app receives the buffer and notes its size and arrival time.
//!
//! Time is virtual: a cycle starts at `k * period`, and a buffer arrives when the work done for
//! it before the app sees it is finished. Every path here does a fixed amount of work per
//! buffer except the positive control [`Condition::PreGateProcessing`], whose voice-activity step
//! (a stand-in for noise suppression that only runs on voiced sub-frames) costs time in
//! proportion to what the room sounds like. So the simulated timing tests check the structure
//! (what runs before the app sees a buffer, and whether its cost depends on the input); the real
//! backend measures wall-clock arrival times.

use crate::activity::Clip;
use hardmute_core::control::ControlBlock;
use hardmute_core::deliver::deliver_from_ring;
use hardmute_core::gate::{fade_frames_for, Gate, DEFAULT_FADE_MS};
use hardmute_core::ring::{RbConsumer, SampleRing};
use ringbuf::traits::{Producer, Split};
use ringbuf::HeapRb;

/// How the app's audio is produced while the user believes they are muted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// (a) The user muted in the app; the app still reads the physical mic (the paper's case).
    AppLevelMute,
    /// (b) HardMute hard-muted: the app reads HardMute Microphone; the driver delivers zeros.
    HardMute,
    /// (c) Positive control: a "gate" that attenuates by 60 dB instead of zeroing.
    Attenuate60dB,
    /// (d) Positive control: processing on the real input (a VAD-like step) runs before the
    /// gate and delays delivery by an amount that depends on the input.
    PreGateProcessing,
}

impl Condition {
    pub const ALL: [Condition; 4] = [
        Condition::AppLevelMute,
        Condition::HardMute,
        Condition::Attenuate60dB,
        Condition::PreGateProcessing,
    ];

    pub fn tag(self) -> &'static str {
        match self {
            Condition::AppLevelMute => "a-app-mute",
            Condition::HardMute => "b-hardmute",
            Condition::Attenuate60dB => "c-attenuate-60db",
            Condition::PreGateProcessing => "d-pregate-processing",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Condition::AppLevelMute => "(a) app-level mute: app reads the physical mic",
            Condition::HardMute => "(b) HardMute hard mute: app reads HardMute Microphone",
            Condition::Attenuate60dB => "(c) control: gate attenuates by 60 dB instead of zeroing",
            Condition::PreGateProcessing => {
                "(d) control: input-dependent processing before the gate shapes timing"
            }
        }
    }

    /// True for the one condition that must leak nothing.
    pub fn must_not_leak(self) -> bool {
        self == Condition::HardMute
    }
}

/// What the fake app saw: the samples and, per buffer, its size and arrival time.
#[derive(Clone, Debug, Default)]
pub struct AppCapture {
    pub samples: Vec<f32>,
    /// Per buffer: arrival time in ns since the stream started.
    pub arrivals_ns: Vec<u64>,
    /// Per buffer: frames delivered.
    pub frames: Vec<u32>,
}

/// Device and app cadence of the simulation.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub rate: u32,
    /// Frames per device cycle (and per app buffer).
    pub period: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rate: 48_000,
            period: 480,
        }
    }
}

/// Fixed cost of a delivery cycle in the virtual clock (copy + gate), ns.
const DELIVERY_COST_NS: u64 = 40_000;
/// The positive control's VAD: fixed analysis cost plus per voiced sub-frame work, ns.
const VAD_BASE_NS: u64 = 150_000;
const VAD_PER_VOICED_SUBFRAME_NS: u64 = 120_000;
const VAD_SUBFRAME: usize = 120;
/// -60 dB as a linear factor.
const ATTENUATION_60DB: f32 = 0.001;

/// A VAD-like step that runs on the real input: sub-frames above an adaptive noise floor are
/// "voiced", and only those get the expensive work. Its cost is what leaks in control (d).
struct EnergyVad {
    noise_floor: f32,
}

impl EnergyVad {
    fn new() -> Self {
        EnergyVad { noise_floor: 1e-6 }
    }

    /// Returns the virtual time this buffer's processing takes, in ns.
    fn process(&mut self, input: &[f32]) -> u64 {
        let mut voiced = 0u64;
        for sub in input.chunks(VAD_SUBFRAME) {
            let energy = sub.iter().map(|x| x * x).sum::<f32>() / sub.len() as f32;
            // The floor follows quiet passages quickly and loud ones slowly.
            let rate = if energy < self.noise_floor {
                0.2
            } else {
                0.002
            };
            self.noise_floor += rate * (energy - self.noise_floor);
            if energy > 4.0 * self.noise_floor.max(1e-10) {
                voiced += 1;
            }
        }
        VAD_BASE_NS + voiced * VAD_PER_VOICED_SUBFRAME_NS
    }
}

/// Plays `clip` through the fake mic and records what the fake app receives under `condition`.
pub fn run_clip(condition: Condition, clip: &Clip, cfg: SimConfig) -> AppCapture {
    let period = cfg.period;
    let period_ns = period as u64 * 1_000_000_000 / cfg.rate as u64;
    let (mut mic, consumer) = HeapRb::<f32>::new(period * 8).split();
    let mut ring = RbConsumer(consumer);
    let ctl = ControlBlock::new(match condition {
        Condition::HardMute | Condition::PreGateProcessing => true,
        // The leaky gate of control (c) lets audio through the core path and attenuates it.
        Condition::AppLevelMute | Condition::Attenuate60dB => false,
    });
    let mut gate = Gate::new(fade_frames_for(cfg.rate, DEFAULT_FADE_MS));
    let mut vad = EnergyVad::new();

    let cycles = clip.samples.len() / period;
    let mut cap = AppCapture {
        samples: Vec::with_capacity(cycles * period),
        arrivals_ns: Vec::with_capacity(cycles),
        frames: Vec::with_capacity(cycles),
    };
    let mut out = vec![0.0f32; period];
    for k in 0..cycles {
        let cycle_start = k as u64 * period_ns;
        let captured = &clip.samples[k * period..(k + 1) * period];
        // The bridge: the physical mic's samples enter the ring.
        let pushed = mic.push_slice(captured);
        debug_assert_eq!(pushed, period, "ring overrun in the simulation");
        let mut work_ns = DELIVERY_COST_NS;
        match condition {
            Condition::AppLevelMute => {
                // The app reads the physical mic itself; its mute button gates nothing.
                let n = ring.pop_into(&mut out);
                out[n..].fill(0.0);
            }
            Condition::HardMute => {
                deliver_from_ring(&ctl, &mut gate, &mut ring, &mut out, 1);
            }
            Condition::Attenuate60dB => {
                deliver_from_ring(&ctl, &mut gate, &mut ring, &mut out, 1);
                for x in &mut out {
                    *x *= ATTENUATION_60DB;
                }
            }
            Condition::PreGateProcessing => {
                work_ns += vad.process(captured);
                deliver_from_ring(&ctl, &mut gate, &mut ring, &mut out, 1);
            }
        }
        cap.samples.extend_from_slice(&out);
        cap.arrivals_ns.push(cycle_start + work_ns);
        cap.frames.push(out.len() as u32);
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{synthesize, Activity};

    fn clip(a: Activity) -> Clip {
        synthesize(a, 0, 0, 0.5, 48_000, 11)
    }

    #[test]
    fn hard_mute_delivers_exact_zeros_at_the_cadence() {
        let cap = run_clip(
            Condition::HardMute,
            &clip(Activity::Vacuum),
            SimConfig::default(),
        );
        assert_eq!(cap.samples.len(), 24_000);
        assert!(cap.samples.iter().all(|x| x.to_bits() == 0));
        let d: Vec<u64> = cap.arrivals_ns.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(d.iter().all(|&x| x == 10_000_000));
    }

    #[test]
    fn app_level_mute_is_the_raw_signal_and_attenuation_is_60db_down() {
        let c = clip(Activity::Music);
        let raw = run_clip(Condition::AppLevelMute, &c, SimConfig::default());
        assert_eq!(raw.samples, c.samples[..raw.samples.len()]);
        let att = run_clip(Condition::Attenuate60dB, &c, SimConfig::default());
        // After the core's start-up (first period zeroed, 5 ms fade-in), exactly -60 dB.
        let i = 4800;
        assert!((att.samples[i] - c.samples[i] * ATTENUATION_60DB).abs() < 1e-9);
        assert!(att.samples.iter().any(|x| *x != 0.0));
    }

    #[test]
    fn pre_gate_processing_zeros_the_data_but_moves_the_arrivals() {
        let loud = run_clip(
            Condition::PreGateProcessing,
            &clip(Activity::DogBark),
            SimConfig::default(),
        );
        assert!(loud.samples.iter().all(|x| x.to_bits() == 0));
        let d: Vec<u64> = loud.arrivals_ns.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            d.iter().any(|&x| x != 10_000_000),
            "the VAD never changed the timing"
        );
    }
}
