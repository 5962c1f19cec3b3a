//! The input-level meter's feed. Local only by design (DESIGN.md invariant 3): the level is
//! drawn in this window and never exported anywhere an app could read it.
//!
//! The IPC protocol has no level feed yet (a `level` subscription is proposed in
//! docs/panel.md), so the real app shows "not available". [`SyntheticLevel`] is a stand-in,
//! enabled with `--demo-level`, used to measure what drawing the meter costs.

use std::time::Instant;

/// How often the meter is redrawn while shown.
pub const METER_INTERVAL_MS: u64 = 50;

pub trait LevelFeed {
    /// The current level, 0..=1 (peak, already smoothed by the producer).
    fn level(&mut self) -> f32;
}

/// A deterministic speech-like envelope (syllables of ~5 Hz under a slower phrase contour).
pub struct SyntheticLevel {
    start: Instant,
}

impl SyntheticLevel {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    pub fn at(seconds: f32) -> f32 {
        let syllables = (seconds * std::f32::consts::TAU * 5.0).sin().abs();
        let phrase = 0.5 + 0.5 * (seconds * std::f32::consts::TAU * 0.3).sin();
        (syllables * phrase).clamp(0.0, 1.0)
    }
}

impl Default for SyntheticLevel {
    fn default() -> Self {
        Self::new()
    }
}

impl LevelFeed for SyntheticLevel {
    fn level(&mut self) -> f32 {
        Self::at(self.start.elapsed().as_secs_f32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_level_stays_in_range_and_moves() {
        let samples: Vec<f32> = (0..200)
            .map(|i| SyntheticLevel::at(i as f32 * 0.05))
            .collect();
        assert!(samples.iter().all(|l| (0.0..=1.0).contains(l)));
        let max = samples.iter().cloned().fold(0.0, f32::max);
        let min = samples.iter().cloned().fold(1.0, f32::min);
        assert!(
            max > 0.5 && min < 0.1,
            "a meter that never moves measures nothing"
        );
    }
}
