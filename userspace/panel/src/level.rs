//! The input-level meter's feed. Local only by design (docs/design.md, invariant 3): the level is
//! drawn in this window and never exported anywhere an app could read it.
//!
//! The real feed is the daemon's `level` events (`subscribe_level`, sent only while live; the
//! link forwards them and the app draws [`meter_position`] of their peak). [`SyntheticLevel`]
//! is a stand-in, enabled with `--demo-level`, used to measure what drawing the meter costs.

use std::time::Instant;

/// How often the meter is redrawn while shown.
pub const METER_INTERVAL_MS: u64 = 50;

pub trait LevelFeed {
    /// The current level, 0..=1 (peak, already smoothed by the producer).
    fn level(&mut self) -> f32;
}

/// Where the meter's bar ends for a linear peak: dBFS from -60 (empty) to 0 (full), the way
/// audio meters read, so speech at -30 dBFS fills half the bar instead of a sliver.
pub fn meter_position(peak: f32) -> f32 {
    const FLOOR_DB: f32 = -60.0;
    if peak.is_nan() || peak <= 0.0 {
        return 0.0;
    }
    let db = 20.0 * peak.min(1.0).log10();
    ((db - FLOOR_DB) / -FLOOR_DB).clamp(0.0, 1.0)
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
    fn meter_position_is_minus_60_to_0_dbfs() {
        assert_eq!(meter_position(0.0), 0.0);
        assert_eq!(meter_position(f32::NAN), 0.0);
        assert_eq!(meter_position(0.001), 0.0, "-60 dBFS is the floor");
        assert!(
            (meter_position(0.031_62) - 0.5).abs() < 0.001,
            "-30 dBFS is half"
        );
        assert_eq!(meter_position(1.0), 1.0);
        assert_eq!(meter_position(4.0), 1.0);
    }

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
