//! Deterministic synthetic stand-ins for household activities, the "room" the attack tries to
//! recognise. Each clip comes from its own fixed seed (ChaCha8), so every run, on every OS, hears
//! the same room. A random gain per clip stands in for the distance between source and mic, so a
//! classifier cannot simply learn one loudness per class.
//!
//! These are not recordings and do not try to sound real; they reproduce what the paper's
//! classifier relied on: how level, burstiness and dynamics differ between activities.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::TAU;

/// The activities, in class-index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Activity {
    RoomTone,
    Typing,
    Cooking,
    Vacuum,
    Music,
    Speech,
    DogBark,
}

impl Activity {
    pub const ALL: [Activity; 7] = [
        Activity::RoomTone,
        Activity::Typing,
        Activity::Cooking,
        Activity::Vacuum,
        Activity::Music,
        Activity::Speech,
        Activity::DogBark,
    ];

    pub fn index(self) -> usize {
        Activity::ALL.iter().position(|&a| a == self).unwrap_or(0)
    }

    pub fn name(self) -> &'static str {
        match self {
            Activity::RoomTone => "room tone",
            Activity::Typing => "typing",
            Activity::Cooking => "cooking sizzle",
            Activity::Vacuum => "vacuum",
            Activity::Music => "music",
            Activity::Speech => "speech babble",
            Activity::DogBark => "dog barks",
        }
    }

    /// A short label for plots.
    pub fn short(self) -> &'static str {
        match self {
            Activity::RoomTone => "room",
            Activity::Typing => "typing",
            Activity::Cooking => "cooking",
            Activity::Vacuum => "vacuum",
            Activity::Music => "music",
            Activity::Speech => "speech",
            Activity::DogBark => "dog",
        }
    }
}

/// One synthetic recording of the room.
#[derive(Clone, Debug)]
pub struct Clip {
    pub activity: Activity,
    /// Unique across the whole data set: the group for cross-validation.
    pub id: usize,
    /// The per-clip distance stand-in, in dB (applied to `samples` already).
    pub gain_db: f32,
    pub rate: u32,
    /// Mono f32 in [-1, 1].
    pub samples: Vec<f32>,
}

/// The random gain range per clip (dB).
pub const GAIN_RANGE_DB: (f32, f32) = (-24.0, 0.0);

/// Synthesises clip `index` of `activity`. The seed mixes the run seed, the activity and the
/// index, so adding clips never changes the existing ones.
pub fn synthesize(
    activity: Activity,
    index: usize,
    id: usize,
    secs: f32,
    rate: u32,
    seed: u64,
) -> Clip {
    let clip_seed = seed
        ^ (activity.index() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut rng = ChaCha8Rng::seed_from_u64(clip_seed);
    let n = (secs * rate as f32) as usize;
    let noise = Noise(rng.random::<u64>() | 1);
    let mut s = Synth {
        rng: &mut rng,
        noise,
        rate: rate as f32,
    };
    let mut samples = match activity {
        Activity::RoomTone => s.room_tone(n),
        Activity::Typing => s.typing(n),
        Activity::Cooking => s.cooking(n),
        Activity::Vacuum => s.vacuum(n),
        Activity::Music => s.music(n),
        Activity::Speech => s.speech(n),
        Activity::DogBark => s.dog(n),
    };
    let gain_db = rng.random_range(GAIN_RANGE_DB.0..GAIN_RANGE_DB.1);
    let gain = 10f32.powf(gain_db / 20.0);
    for x in &mut samples {
        *x = (*x * gain).clamp(-1.0, 1.0);
    }
    Clip {
        activity,
        id,
        gain_db,
        rate,
        samples,
    }
}

struct Synth<'a> {
    /// Every decision (event times, pitches, levels) comes from the ChaCha stream.
    rng: &'a mut ChaCha8Rng,
    /// Per-sample white noise: xorshift64*, seeded from the ChaCha stream. Statistical quality
    /// is irrelevant for noise this short, and it is ~10x cheaper than ChaCha in debug builds,
    /// which keeps `cargo test` fast.
    noise: Noise,
    rate: f32,
}

struct Noise(u64);

impl Noise {
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // The top 24 bits as a fraction in [0, 1), then to [-1, 1).
        (r >> 40) as f32 * (2.0 / (1u64 << 24) as f32) - 1.0
    }
}

/// One-pole low-pass; `alpha` in (0, 1], larger = brighter.
struct OnePole {
    alpha: f32,
    y: f32,
}

impl OnePole {
    fn new(cutoff_hz: f32, rate: f32) -> Self {
        let alpha = 1.0 - (-TAU * cutoff_hz / rate).exp();
        OnePole { alpha, y: 0.0 }
    }
    fn lp(&mut self, x: f32) -> f32 {
        self.y += self.alpha * (x - self.y);
        self.y
    }
    /// High-pass as input minus its low-passed part.
    fn hp(&mut self, x: f32) -> f32 {
        x - self.lp(x)
    }
}

/// One cycle of a periodic waveform, looked up by phase in [0, 1).
struct Table(Vec<f32>);

impl Table {
    const SIZE: usize = 4096;
    fn new(f: impl Fn(f32) -> f32) -> Self {
        Table(
            (0..Self::SIZE)
                .map(|i| f(i as f32 / Self::SIZE as f32))
                .collect(),
        )
    }
    fn at(&self, phase: f32) -> f32 {
        self.0[((phase * Self::SIZE as f32) as usize).min(Self::SIZE - 1)]
    }
}

/// A two-pole resonator (a "formant") at `freq` with bandwidth `bw`.
struct Resonator {
    a1: f32,
    a2: f32,
    gain: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn new(freq: f32, bw: f32, rate: f32) -> Self {
        let r = (-std::f32::consts::PI * bw / rate).exp();
        let a1 = 2.0 * r * (TAU * freq / rate).cos();
        Resonator {
            a1,
            a2: -r * r,
            gain: 1.0 - r,
            y1: 0.0,
            y2: 0.0,
        }
    }
    fn tick(&mut self, x: f32) -> f32 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

impl Synth<'_> {
    fn white(&mut self) -> f32 {
        self.noise.next()
    }

    /// A random duration in [lo, hi) seconds, in samples.
    fn rand_secs(&mut self, lo: f32, hi: f32) -> usize {
        let s = self.rng.random_range(lo..hi);
        self.n(s)
    }

    /// Seconds to samples.
    fn n(&self, secs: f32) -> usize {
        (secs * self.rate) as usize
    }

    /// Low, steady noise with a little mains hum: the quiet room every other class sits on.
    fn floor(&mut self, n: usize, level: f32) -> Vec<f32> {
        let mut lp = OnePole::new(600.0, self.rate);
        let hum_hz = if self.rng.random_bool(0.5) {
            50.0
        } else {
            60.0
        };
        let phase = self.rng.random_range(0.0..TAU);
        (0..n)
            .map(|i| {
                let hum = 0.15 * (TAU * hum_hz * i as f32 / self.rate + phase).sin();
                level * (lp.lp(self.white()) * 3.0 + hum)
            })
            .collect()
    }

    fn room_tone(&mut self, n: usize) -> Vec<f32> {
        let level = self.rng.random_range(0.004..0.01);
        let mut out = self.floor(n, level);
        // Slow drift (ventilation), a few dB over seconds.
        let drift_hz = self.rng.random_range(0.05..0.3);
        for (i, x) in out.iter_mut().enumerate() {
            *x *= 1.0 + 0.3 * (TAU * drift_hz * i as f32 / self.rate).sin();
        }
        out
    }

    /// Key clicks: short bright decaying bursts in typing runs separated by pauses.
    fn typing(&mut self, n: usize) -> Vec<f32> {
        let mut out = self.floor(n, 0.003);
        let mut t = 0usize;
        while t < n {
            // a run of keystrokes, then a pause
            let run_end = t + self.rand_secs(1.0, 4.0);
            while t < run_end.min(n) {
                let amp = self.rng.random_range(0.15..0.6);
                let len = self.n(0.012);
                let tau = self.rate * self.rng.random_range(0.001..0.003);
                let mut hp = OnePole::new(2000.0, self.rate);
                for k in 0..len {
                    if t + k >= n {
                        break;
                    }
                    out[t + k] += amp * (-(k as f32) / tau).exp() * hp.hp(self.white()) * 2.0;
                }
                t += self.rand_secs(0.08, 0.3);
            }
            t += self.rand_secs(0.3, 1.5);
        }
        out
    }

    /// Frying: dense bright crackle on a hiss whose level wanders.
    fn cooking(&mut self, n: usize) -> Vec<f32> {
        let mut out = self.floor(n, 0.004);
        let mut hp = OnePole::new(3000.0, self.rate);
        let hiss = self.rng.random_range(0.02..0.05);
        let mut wander = 1.0f32;
        let pop_rate = self.rng.random_range(40.0..120.0) / self.rate;
        let mut pop_env = 0.0f32;
        let pop_decay = (-1.0 / (0.0015 * self.rate)).exp();
        for x in out.iter_mut() {
            wander = (wander + 0.0005 * self.white()).clamp(0.6, 1.4);
            if self.white() * 0.5 + 0.5 < pop_rate {
                pop_env = self.rng.random_range(0.05..0.35);
            }
            pop_env *= pop_decay;
            let w = hp.hp(self.white());
            *x += w * (hiss * wander + pop_env);
        }
        out
    }

    /// Vacuum cleaner: loud, steady broadband noise plus motor harmonics.
    fn vacuum(&mut self, n: usize) -> Vec<f32> {
        let mut lp = OnePole::new(2500.0, self.rate);
        let f0 = self.rng.random_range(150.0..260.0);
        let level = self.rng.random_range(0.25..0.4);
        let phases: Vec<f32> = (0..6).map(|_| self.rng.random_range(0.0..TAU)).collect();
        // One motor cycle as a table (the harmonics are summed once, not per sample).
        let motor = Table::new(|x| {
            phases
                .iter()
                .enumerate()
                .map(|(h, p)| (TAU * (h + 1) as f32 * x + p).sin() / (h + 1) as f32)
                .sum()
        });
        let step = f0 / self.rate;
        let mut phase = 0.0f32;
        (0..n)
            .map(|_| {
                phase = (phase + step).fract();
                level * (lp.lp(self.white()) * 1.6 + 0.25 * motor.at(phase))
            })
            .collect()
    }

    /// Music: a chord per beat with a decaying envelope and a kick on every other beat.
    fn music(&mut self, n: usize) -> Vec<f32> {
        let mut out = self.floor(n, 0.003);
        let sine = Table::new(|x| (TAU * x).sin());
        let beat = {
            let bpm: f32 = self.rng.random_range(80.0..140.0);
            self.n(60.0 / bpm)
        };
        let level = self.rng.random_range(0.1..0.2);
        let decay = (-3.0 / self.rate).exp();
        let kick_decay = (-25.0 / self.rate).exp();
        let mut t = 0usize;
        let mut b = 0usize;
        while t < n {
            let root = 110.0 * 2f32.powf(self.rng.random_range(0..12) as f32 / 12.0);
            let steps = [1.0, 1.26, 1.5, 2.0].map(|m| root * m / self.rate);
            let mut phases = [0.0f32; 4];
            let (mut env, mut kick_env, mut kick_phase) = (1.0f32, 1.5f32, 0.0f32);
            for k in 0..beat.min(n - t) {
                let mut tone = 0.0;
                for (p, st) in phases.iter_mut().zip(&steps) {
                    *p = (*p + st).fract();
                    tone += sine.at(*p);
                }
                kick_phase = (kick_phase + 55.0 / self.rate).fract();
                let kick = if b.is_multiple_of(2) {
                    kick_env * sine.at(kick_phase)
                } else {
                    0.0
                };
                out[t + k] += level * ((env * 0.7 + 0.3) * tone / 4.0 + kick);
                env *= decay;
                kick_env *= kick_decay;
            }
            t += beat;
            b += 1;
        }
        out
    }

    /// Speech-like babble: a buzz at a wandering pitch through two formants, in syllables
    /// (150-300 ms) grouped into phrases with pauses.
    fn speech(&mut self, n: usize) -> Vec<f32> {
        let mut out = self.floor(n, 0.003);
        let level = self.rng.random_range(0.15..0.3);
        let base_pitch = self.rng.random_range(100.0..220.0);
        let mut t = 0usize;
        let mut phase = 0.0f32;
        while t < n {
            let phrase_end = t + self.rand_secs(1.0, 3.5);
            while t < phrase_end.min(n) {
                let len = self.rand_secs(0.15, 0.3);
                let mut f1 = Resonator::new(self.rng.random_range(300.0..800.0), 120.0, self.rate);
                let mut f2 = Resonator::new(self.rng.random_range(900.0..2300.0), 200.0, self.rate);
                let pitch = base_pitch * self.rng.random_range(0.85..1.2);
                let voiced = self.rng.random_bool(0.8);
                for k in 0..len.min(n - t) {
                    let env = (std::f32::consts::PI * k as f32 / len as f32).sin();
                    phase = (phase + pitch / self.rate).fract();
                    let src = if voiced {
                        2.0 * phase - 1.0
                    } else {
                        self.white() * 0.5
                    };
                    let y = f1.tick(src) * 6.0 + f2.tick(src) * 4.0;
                    out[t + k] += level * env * y;
                }
                t += len + self.rand_secs(0.02, 0.08);
            }
            t += self.rand_secs(0.3, 1.2);
        }
        out
    }

    /// Dog barks: clusters of 1-4 loud harmonic bursts, seconds apart, on a quiet room.
    fn dog(&mut self, n: usize) -> Vec<f32> {
        let mut out = self.floor(n, 0.004);
        let mut t = self.rand_secs(0.0, 1.5);
        while t < n {
            let barks = self.rng.random_range(1..=4);
            for _ in 0..barks {
                let len = self.rand_secs(0.12, 0.3);
                let f0 = self.rng.random_range(380.0..700.0);
                let amp = self.rng.random_range(0.4..0.8);
                let mut res = Resonator::new(f0 * 2.0, 300.0, self.rate);
                for k in 0..len {
                    if t + k >= n {
                        break;
                    }
                    let time = k as f32 / self.rate;
                    let env = (1.0 - (-time * 200.0).exp()) * (-time * 10.0).exp();
                    let glide = f0 * (1.0 - 0.3 * k as f32 / len as f32);
                    let tone = (TAU * glide * time).sin() + 0.5 * (TAU * 2.0 * glide * time).sin();
                    out[t + k] += amp * env * (tone + res.tick(self.white()) * 3.0);
                }
                t += len + self.rand_secs(0.1, 0.35);
            }
            t += self.rand_secs(1.5, 5.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn clips_are_deterministic_and_distinct() {
        for a in Activity::ALL {
            let c1 = synthesize(a, 3, 0, 1.0, 48_000, 7);
            let c2 = synthesize(a, 3, 0, 1.0, 48_000, 7);
            let other = synthesize(a, 4, 0, 1.0, 48_000, 7);
            assert_eq!(c1.samples, c2.samples, "{a:?} not deterministic");
            assert_ne!(c1.samples, other.samples, "{a:?} clips 3 and 4 identical");
            assert_eq!(c1.samples.len(), 48_000);
            assert!(c1.samples.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
            assert!(rms(&c1.samples) > 1e-5, "{a:?} silent");
            assert!((GAIN_RANGE_DB.0..GAIN_RANGE_DB.1).contains(&c1.gain_db));
        }
    }

    #[test]
    fn vacuum_is_louder_than_room_tone_before_gain() {
        // Compare at equal gain by undoing the per-clip gain.
        let undo = |c: &Clip| rms(&c.samples) / 10f32.powf(c.gain_db / 20.0);
        let v = synthesize(Activity::Vacuum, 0, 0, 1.0, 48_000, 1);
        let r = synthesize(Activity::RoomTone, 0, 0, 1.0, 48_000, 1);
        assert!(undo(&v) > 10.0 * undo(&r));
    }
}
