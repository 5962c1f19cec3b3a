//! Where the audio an app receives comes from. The simulated backend runs the real core path in
//! process and provides every condition; a real backend (Linux PipeWire) provides the conditions
//! a real system can produce — (a) and (b) — and the run takes the positive controls, which
//! need a deliberately broken path, from the simulation.
//!
//! Real backends: `linux` (PipeWire tools against the e2e graph) and [`device`] (any OS with audio
//! devices: a loopback device feeds hardmuted's source; cpal on macOS and Windows). Both play all
//! clips back to back in one shuffled stream and split what was recorded with
//! [`concatenate_shuffled`] and [`split_by_clip`].

use crate::activity::Clip;
use crate::sim::{self, AppCapture, Condition, SimConfig};

pub mod device;
#[cfg(target_os = "linux")]
pub mod linux;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::time::Duration;

pub trait Backend {
    fn name(&self) -> String;
    fn supports(&self, condition: Condition) -> bool;
    /// Plays every clip and returns what the app received, one capture per clip, in order.
    fn capture_all(
        &mut self,
        condition: Condition,
        clips: &[Clip],
    ) -> Result<Vec<AppCapture>, String>;
    /// True when arrival times come from a virtual clock (exactly reproducible), so the
    /// timing part of the reports must be bit-identical too; false for wall-clock backends,
    /// whose timing is judged by the KS tests only.
    fn timing_is_deterministic(&self) -> bool;
}

/// The in-process backend (see [`crate::sim`]).
pub struct Simulated {
    cfg: SimConfig,
}

impl Simulated {
    pub fn new(cfg: SimConfig) -> Self {
        Simulated { cfg }
    }
}

impl Backend for Simulated {
    fn name(&self) -> String {
        "simulated".into()
    }
    fn supports(&self, _: Condition) -> bool {
        true
    }
    fn capture_all(
        &mut self,
        condition: Condition,
        clips: &[Clip],
    ) -> Result<Vec<AppCapture>, String> {
        Ok(clips
            .iter()
            .map(|c| sim::run_clip(condition, c, self.cfg))
            .collect())
    }
    fn timing_is_deterministic(&self) -> bool {
        true
    }
}

/// One buffer a recorder received: when it arrived (since a common start) and which samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub at: Duration,
    pub first_sample: usize,
    pub samples: usize,
}

/// All clips in one stream, in a fixed shuffled order (so slow drifts of the machine's load are
/// spread over every activity instead of following one); `offsets[i]` = where clip `i` starts.
pub fn concatenate_shuffled(clips: &[Clip]) -> (Vec<f32>, Vec<usize>) {
    let mut order: Vec<usize> = (0..clips.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0x5EED));
    let mut offsets = vec![0usize; clips.len()];
    let mut playback = Vec::new();
    for &i in &order {
        offsets[i] = playback.len();
        playback.extend_from_slice(&clips[i].samples);
    }
    (playback, offsets)
}

/// The sample of a recording that the playback's first sample reached: the first buffer that
/// arrived after playback started; with `audible` (the recorded path carries the signal), refined
/// to the first non-zero sample from there.
pub fn playback_start(
    samples: &[f32],
    arrivals: &[Arrival],
    started: Duration,
    audible: bool,
) -> usize {
    let by_clock = arrivals
        .iter()
        .find(|a| a.at >= started)
        .map_or(samples.len(), |a| a.first_sample);
    if !audible {
        return by_clock;
    }
    samples[by_clock.min(samples.len())..]
        .iter()
        .position(|x| *x != 0.0)
        .map_or(by_clock, |p| by_clock + p)
}

/// One capture per clip out of a recording of [`concatenate_shuffled`]'s stream whose first
/// sample landed at `start`: the clip's samples, and the arrival times (relative to the clip's
/// first buffer) and sizes of the buffers that began inside it.
pub fn split_by_clip(
    samples: &[f32],
    arrivals: &[Arrival],
    start: usize,
    offsets: &[usize],
    clips: &[Clip],
) -> Result<Vec<AppCapture>, String> {
    let mut caps = Vec::with_capacity(clips.len());
    for (i, clip) in clips.iter().enumerate() {
        let from = start + offsets[i];
        let to = from + clip.samples.len();
        if to > samples.len() {
            return Err(format!(
                "recording too short: {} samples, clip {} needs up to {to}",
                samples.len(),
                clip.id
            ));
        }
        let mut cap = AppCapture {
            samples: samples[from..to].to_vec(),
            ..Default::default()
        };
        let mine: Vec<&Arrival> = arrivals
            .iter()
            .filter(|a| a.first_sample >= from && a.first_sample < to)
            .collect();
        let t_first = mine.first().map_or(Duration::ZERO, |a| a.at);
        for a in mine {
            cap.arrivals_ns.push((a.at - t_first).as_nanos() as u64);
            cap.frames.push(a.samples as u32);
        }
        caps.push(cap);
    }
    Ok(caps)
}
