//! The gate: what makes mute a fact. Muted means every sample is the format's exact zero.
//!
//! Mute takes effect on the very next sample the gate touches; unmute may ramp the gain up over
//! `fade_frames` so the first words are not a click. The ramp is linear, per frame (all channels
//! of a frame get the same gain), and never runs in the mute direction.

use crate::sample::Sample;

/// Default unmute fade-in length.
pub const DEFAULT_FADE_MS: u32 = 5;

/// Fade length in frames for a rate and a duration in milliseconds.
pub const fn fade_frames_for(rate_hz: u32, ms: u32) -> u32 {
    ((rate_hz as u64 * ms as u64) / 1000) as u32
}

/// Per-stream gate state. One per delivery path; it only remembers where the fade-in is.
#[derive(Clone, Debug)]
pub struct Gate {
    fade_frames: u32,
    /// Frames of fade-in already applied since the last unmute; `fade_frames` = fully open.
    faded: u32,
    /// Starts closed, so even the first buffer after creation fades in.
    muted: bool,
    /// Ring samples captured while muted that are still to be consumed as zeros
    /// (see [`crate::deliver::deliver_from_ring`]).
    pub(crate) stale_samples: usize,
    /// The control block generation of the last cycle: a different one while unmuted means a
    /// mute came and went between two cycles.
    pub(crate) generation: u64,
}

impl Gate {
    pub const fn new(fade_frames: u32) -> Self {
        Gate {
            fade_frames,
            faded: 0,
            muted: true,
            stale_samples: 0,
            generation: 0,
        }
    }

    /// True until the first unmuted buffer after a mute (or after creation).
    pub fn is_closed(&self) -> bool {
        self.muted
    }

    pub fn fade_frames(&self) -> u32 {
        self.fade_frames
    }

    /// True while an unmute fade-in is still in progress.
    pub fn is_fading(&self) -> bool {
        !self.muted && self.faded < self.fade_frames
    }

    /// Applies the mute state to one interleaved buffer in place.
    ///
    /// Realtime-safe: no allocation, no locks, no panics (`channels == 0` is treated as 1, and a
    /// trailing partial frame is gated like a whole one).
    #[inline]
    pub fn apply<S: Sample>(&mut self, muted: bool, buf: &mut [S], channels: usize) {
        if muted {
            self.muted = true;
            self.faded = 0;
            buf.fill(S::ZERO);
            return;
        }
        if self.muted {
            self.muted = false;
            self.faded = 0;
        }
        if self.faded >= self.fade_frames {
            return;
        }
        let channels = channels.max(1);
        let len = self.fade_frames as f32;
        for frame in buf.chunks_mut(channels) {
            if self.faded >= self.fade_frames {
                break;
            }
            self.faded += 1;
            let gain = self.faded as f32 / len;
            for s in frame {
                *s = s.scale(gain);
            }
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(fade_frames_for(48_000, DEFAULT_FADE_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::I24;
    use proptest::prelude::*;

    #[test]
    fn fade_length_follows_rate() {
        assert_eq!(fade_frames_for(48_000, 5), 240);
        assert_eq!(fade_frames_for(44_100, 5), 220);
    }

    #[test]
    fn mute_is_instant_even_mid_fade() {
        let mut g = Gate::new(100);
        let mut b = [1.0f32; 40];
        g.apply(false, &mut b, 2);
        assert!(g.is_fading());
        let mut b = [1.0f32; 40];
        g.apply(true, &mut b, 2);
        assert!(b.iter().all(|&x| x.to_bits() == 0));
    }

    fn check_zero<S: Sample>(buf: &[S]) -> bool {
        buf.iter().all(|&s| s == S::ZERO)
    }

    fn run_formats(data: &[f32], channels: usize, fade: u32) {
        macro_rules! one {
            ($t:ty) => {{
                let mut g = Gate::new(fade);
                let mut b: alloc_free::Buf<$t> = alloc_free::Buf::from_f32(data);
                g.apply(true, b.as_mut(), channels);
                assert!(check_zero(b.as_mut()), "{} muted not zero", stringify!($t));
            }};
        }
        one!(f32);
        one!(i16);
        one!(I24);
        one!(i32);
    }

    /// Fixed-capacity buffers so the tests need no allocator either.
    mod alloc_free {
        use crate::sample::Sample;
        pub struct Buf<S: Sample> {
            data: [S; 4096],
            len: usize,
        }
        impl<S: Sample> Buf<S> {
            pub fn from_f32(v: &[f32]) -> Self {
                let mut data = [S::ZERO; 4096];
                for (d, s) in data.iter_mut().zip(v) {
                    *d = S::from_f32(*s);
                }
                Buf {
                    data,
                    len: v.len().min(4096),
                }
            }
            pub fn as_mut(&mut self) -> &mut [S] {
                &mut self.data[..self.len]
            }
        }
    }

    proptest! {
        #[test]
        fn muted_is_exact_zero_every_format(
            data in proptest::collection::vec(-1.5f32..1.5, 0..4096),
            channels in 1usize..9,
            fade in 0u32..1000,
        ) {
            run_formats(&data, channels, fade);
        }

        #[test]
        fn fade_in_is_monotonic_and_bounded(
            channels in 1usize..9,
            fade in 1u32..2000,
            chunks in proptest::collection::vec(1usize..512, 1..20),
        ) {
            let mut g = Gate::new(fade);
            g.apply(true, &mut [0.0f32; 4], channels);
            let mut last_gain = 0.0f32;
            let mut frames_seen = 0u32;
            for frames in chunks {
                let mut buf = [1.0f32; 512 * 8];
                let buf = &mut buf[..frames * channels];
                g.apply(false, buf, channels);
                for frame in buf.chunks(channels) {
                    let gain = frame[0];
                    // same gain on every channel of a frame
                    prop_assert!(frame.iter().all(|&x| x == gain));
                    prop_assert!(gain >= last_gain, "gain fell: {} -> {}", last_gain, gain);
                    prop_assert!((0.0..=1.0).contains(&gain));
                    frames_seen += 1;
                    if frames_seen >= fade { prop_assert_eq!(gain, 1.0); }
                    last_gain = gain;
                }
            }
        }

        #[test]
        fn fade_never_amplifies_integers(x in any::<i16>(), fade in 1u32..300) {
            let mut g = Gate::new(fade);
            let mut b = [x; 600];
            g.apply(false, &mut b, 1);
            prop_assert!(b.iter().all(|s| s.unsigned_abs() <= x.unsigned_abs()));
            prop_assert_eq!(b[599], x);
        }
    }
}
