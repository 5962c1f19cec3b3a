//! Sample formats the virtual devices offer: f32, i16, 24-bit in i32, i32.

/// One interleaved sample of a format the gate can deliver.
///
/// `ZERO` is the exact digital silence of the format: the only value a muted gate writes.
pub trait Sample: Copy + Send + Sync + PartialEq + core::fmt::Debug + 'static {
    const ZERO: Self;
    /// Full scale maps to [-1.0, 1.0].
    fn to_f32(self) -> f32;
    /// Saturating conversion from [-1.0, 1.0].
    fn from_f32(v: f32) -> Self;
    /// Scales by `gain` in [0, 1]; the result's magnitude never exceeds the input's.
    fn scale(self, gain: f32) -> Self;
}

impl Sample for f32 {
    const ZERO: Self = 0.0;
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline]
    fn scale(self, gain: f32) -> Self {
        self * gain
    }
}

/// Integer scaling truncates toward zero so a fade can only make a sample smaller.
macro_rules! int_sample {
    ($t:ty, $full:expr) => {
        impl Sample for $t {
            const ZERO: Self = 0;
            #[inline]
            fn to_f32(self) -> f32 {
                self as f32 / $full
            }
            #[inline]
            fn from_f32(v: f32) -> Self {
                // `as` saturates and maps NaN to 0.
                (v * $full) as $t
            }
            #[inline]
            fn scale(self, gain: f32) -> Self {
                (self as f64 * gain as f64) as $t
            }
        }
    };
}
int_sample!(i16, 32768.0);
int_sample!(i32, 2_147_483_648.0);

/// A 24-bit sample in the low 24 bits of an `i32`, sign-extended (PipeWire `S24_32`, ALSA
/// `S24_LE`). Windows' left-justified 24-in-32 is plain [`i32`] with a zero low byte.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct I24(pub i32);

impl I24 {
    pub const MAX: i32 = (1 << 23) - 1;
    pub const MIN: i32 = -(1 << 23);
}

impl Sample for I24 {
    const ZERO: Self = I24(0);
    #[inline]
    fn to_f32(self) -> f32 {
        self.0 as f32 / 8_388_608.0
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        let x = (v * 8_388_608.0) as i32;
        I24(x.clamp(Self::MIN, Self::MAX))
    }
    #[inline]
    fn scale(self, gain: f32) -> Self {
        I24((self.0 as f64 * gain as f64) as i32)
    }
}

const _: () = assert!(core::mem::size_of::<I24>() == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_round_trips() {
        assert_eq!(i16::from_f32(-1.0), i16::MIN);
        assert_eq!(i16::from_f32(2.0), i16::MAX);
        assert_eq!(I24::from_f32(-1.0), I24(I24::MIN));
        assert_eq!(I24::from_f32(1.5), I24(I24::MAX));
        assert_eq!(i32::from_f32(f32::NAN), 0);
        assert_eq!(i16::from_f32(0.5).to_f32(), 0.5);
    }

    #[test]
    fn scaling_never_grows() {
        for x in [i16::MIN, -1, 1, i16::MAX] {
            for g in [0.0, 0.3, 0.999_999, 1.0] {
                assert!(x.scale(g).unsigned_abs() <= x.unsigned_abs());
            }
        }
        assert_eq!(i32::MIN.scale(1.0), i32::MIN);
        assert_eq!(I24(I24::MIN).scale(0.5), I24(I24::MIN / 2));
    }
}
