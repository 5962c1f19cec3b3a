//! The telemetry an app could send home while the user is muted, computed from what it received.
//!
//! Per window (1 s by default) the app reports the paper's level statistics: min, mean and max of
//! short-frame levels (20 ms), the window RMS and the peak, all in dBFS; and what it can see of
//! the stream itself: inter-arrival times of its buffers (min, max, std), how late buffers arrive
//! against the nominal cadence (mean; the app knows how many frames it got, so it knows when each
//! buffer "should" have come) and buffer sizes (mean, std). Exact silence has no level in dB; it is reported as [`SILENCE_DB`], so zeros give one
//! fixed bit pattern.

use crate::sim::AppCapture;

/// The level reported for digital silence (and the floor of every level).
pub const SILENCE_DB: f64 = -200.0;

pub const LEVEL_FEATURES: [&str; 5] = [
    "frame level min",
    "frame level mean",
    "frame level max",
    "RMS",
    "peak",
];
pub const TIMING_FEATURES: [&str; 6] = [
    "inter-arrival min",
    "inter-arrival max",
    "inter-arrival std",
    "arrival lateness mean",
    "buffer frames mean",
    "buffer frames std",
];
pub const N_FEATURES: usize = LEVEL_FEATURES.len() + TIMING_FEATURES.len();

/// One window's telemetry: 5 level values (dBFS) then 6 timing values (µs, frames).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Telemetry(pub [f64; N_FEATURES]);

impl Telemetry {
    pub fn level(&self) -> &[f64] {
        &self.0[..LEVEL_FEATURES.len()]
    }
    pub fn timing(&self) -> &[f64] {
        &self.0[LEVEL_FEATURES.len()..]
    }
    /// Bitwise equality (distinguishes -0.0 from 0.0, unlike `==`).
    pub fn bits_equal(&self, other: &Telemetry, which: std::ops::Range<usize>) -> bool {
        self.0[which.clone()]
            .iter()
            .zip(&other.0[which])
            .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

pub fn feature_name(i: usize) -> &'static str {
    if i < LEVEL_FEATURES.len() {
        LEVEL_FEATURES[i]
    } else {
        TIMING_FEATURES[i - LEVEL_FEATURES.len()]
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TelemetryConfig {
    pub rate: u32,
    pub window_secs: f64,
    pub frame_ms: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            rate: 48_000,
            window_secs: 1.0,
            frame_ms: 20.0,
        }
    }
}

fn power_db(mean_square: f64) -> f64 {
    if mean_square > 0.0 {
        (10.0 * mean_square.log10()).max(SILENCE_DB)
    } else {
        SILENCE_DB
    }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

/// Splits a capture into whole windows and computes each window's telemetry.
pub fn windows(cap: &AppCapture, cfg: TelemetryConfig) -> Vec<Telemetry> {
    let win = (cfg.window_secs * cfg.rate as f64) as usize;
    let frame = ((cfg.frame_ms / 1000.0) * cfg.rate as f64) as usize;
    // Where each buffer starts in the sample stream, to assign buffers to windows.
    let mut starts = Vec::with_capacity(cap.frames.len());
    let mut pos = 0usize;
    for &f in &cap.frames {
        starts.push(pos);
        pos += f as usize;
    }
    let n_windows = cap.samples.len() / win;
    let mut out = Vec::with_capacity(n_windows);
    for w in 0..n_windows {
        let s = &cap.samples[w * win..(w + 1) * win];
        let levels: Vec<f64> = s
            .chunks_exact(frame)
            .map(|f| power_db(f.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / f.len() as f64))
            .collect();
        let (lmean, _) = mean_std(&levels);
        let lmin = levels.iter().copied().fold(f64::INFINITY, f64::min);
        let lmax = levels.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let rms = power_db(s.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / s.len() as f64);
        let peak_abs = s.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()));
        let peak = if peak_abs > 0.0 {
            (20.0 * peak_abs.log10()).max(SILENCE_DB)
        } else {
            SILENCE_DB
        };

        let range = (w * win)..((w + 1) * win);
        let mut intervals = Vec::new();
        let mut lateness = Vec::new();
        let mut sizes = Vec::new();
        for (i, &st) in starts.iter().enumerate() {
            if range.contains(&st) {
                sizes.push(cap.frames[i] as f64);
                let nominal_us = st as f64 * 1e6 / cfg.rate as f64;
                lateness.push(
                    (cap.arrivals_ns[i] as f64 - cap.arrivals_ns[0] as f64) / 1000.0 - nominal_us,
                );
                if i > 0 {
                    intervals
                        .push((cap.arrivals_ns[i] as f64 - cap.arrivals_ns[i - 1] as f64) / 1000.0);
                }
            }
        }
        let (_, istd) = mean_std(&intervals);
        let imin = intervals.iter().copied().fold(f64::INFINITY, f64::min);
        let imin = if imin.is_finite() { imin } else { 0.0 };
        let imax = intervals.iter().copied().fold(0.0, f64::max);
        let (late, _) = mean_std(&lateness);
        let (smean, sstd) = mean_std(&sizes);
        out.push(Telemetry([
            lmin, lmean, lmax, rms, peak, imin, imax, istd, late, smean, sstd,
        ]));
    }
    out
}

/// The paper's per-minute reports: the mean and std of each feature over `n` consecutive rows
/// (windows). Returns one row of twice the width per whole group.
pub fn aggregate(rows: &[Vec<f64>], n: usize) -> Vec<Vec<f64>> {
    rows.chunks_exact(n.max(1))
        .map(|group| {
            let width = group[0].len();
            let mut row = Vec::with_capacity(2 * width);
            for f in 0..width {
                let col: Vec<f64> = group.iter().map(|t| t[f]).collect();
                let (m, s) = mean_std(&col);
                row.push(m);
                row.push(s);
            }
            row
        })
        .collect()
}

/// What the attacker's server derives from one window's report before classifying: the raw
/// values plus gain-independent spreads (max-mean, mean-min, peak-RMS).
pub fn attacker_features(t: &Telemetry) -> Vec<f64> {
    let v = &t.0;
    let mut f = v.to_vec();
    f.push(v[2] - v[1]);
    f.push(v[1] - v[0]);
    f.push(v[4] - v[3]);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(samples: Vec<f32>, period: usize, gap_ns: u64) -> AppCapture {
        let n = samples.len() / period;
        AppCapture {
            samples,
            arrivals_ns: (0..n as u64).map(|k| k * gap_ns).collect(),
            frames: vec![period as u32; n],
        }
    }

    #[test]
    fn silence_is_one_fixed_vector() {
        let t = windows(
            &capture(vec![0.0; 96_000], 480, 10_000_000),
            TelemetryConfig::default(),
        );
        assert_eq!(t.len(), 2);
        assert!(t[0].level().iter().all(|&x| x == SILENCE_DB));
        assert!(t[0].bits_equal(&t[1], 0..N_FEATURES));
        assert_eq!(t[1].timing()[0], 10_000.0);
        assert_eq!(t[1].timing()[3], 0.0);
        assert_eq!(t[1].timing()[4], 480.0);
    }

    #[test]
    fn a_full_scale_square_wave_is_0_dbfs() {
        let s: Vec<f32> = (0..48_000)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let t = windows(&capture(s, 480, 10_000_000), TelemetryConfig::default());
        for v in t[0].level() {
            assert!(v.abs() < 1e-9, "{v}");
        }
    }

    #[test]
    fn one_nonzero_sample_changes_the_telemetry() {
        let mut s = vec![0.0f32; 48_000];
        s[1234] = 1e-7;
        let t = windows(&capture(s, 480, 10_000_000), TelemetryConfig::default());
        let z = windows(
            &capture(vec![0.0; 48_000], 480, 10_000_000),
            TelemetryConfig::default(),
        );
        assert!(!t[0].bits_equal(&z[0], 0..LEVEL_FEATURES.len()));
    }

    #[test]
    fn aggregation_gives_mean_and_std_per_feature() {
        let a = vec![1.0; N_FEATURES];
        let b = vec![3.0; N_FEATURES];
        let rows = aggregate(&[a.clone(), b, a], 2);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), 2 * N_FEATURES);
        assert_eq!((rows[0][0], rows[0][1]), (2.0, 1.0));
    }
}
