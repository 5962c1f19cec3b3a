//! The test signal shared by the player and the analyser.
#![allow(dead_code)]

pub const RATE: usize = 48_000;
pub const PERIOD: usize = RATE; // the noise repeats every second
pub const NOISE_PEAK: f32 = 0.4;
pub const MARKER_LEVEL: f32 = 0.9;
pub const MARKER_THRESHOLD: f32 = 0.6;
pub const MARKER_RUN: usize = 8;
pub const FADE_ALLOWANCE: usize = 1024;

pub fn reference() -> Vec<f32> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..PERIOD)
        .map(|_| {
            // xorshift64*: deterministic, no dependency.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
            let v = (r as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            // Quantise to what an f32 path carries exactly.
            v * NOISE_PEAK
        })
        .collect()
}
