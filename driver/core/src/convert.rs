//! Format conversion between the physical mic and the virtual device: sample format and channel
//! count (rate goes through [`crate::drift::Resampler`]).
//!
//! Channel rules, chosen to keep speech audible whatever the pairing:
//! - same count: copied;
//! - mono to many: the mono signal on every channel;
//! - many to mono: the average of all channels;
//! - otherwise: channel `c` takes source channel `c % src_channels`.
//!
//! Conversion goes through `f32`, so `i32` keeps 24 bits of precision (the bridges' internal format
//! is `f32` anyway).

use crate::sample::Sample;

/// Converts interleaved `src` (`src_ch` channels) into interleaved `dst` (`dst_ch` channels).
/// Converts as many whole frames as both buffers hold and returns that number of frames.
/// Zero channel counts convert nothing.
pub fn convert<Src: Sample, Dst: Sample>(
    src: &[Src],
    src_ch: usize,
    dst: &mut [Dst],
    dst_ch: usize,
) -> usize {
    if src_ch == 0 || dst_ch == 0 {
        return 0;
    }
    let frames = (src.len() / src_ch).min(dst.len() / dst_ch);
    let pairs = src
        .chunks_exact(src_ch)
        .zip(dst.chunks_exact_mut(dst_ch))
        .take(frames);
    if dst_ch == 1 && src_ch > 1 {
        let inv = 1.0 / src_ch as f32;
        for (s, d) in pairs {
            let sum: f32 = s.iter().map(|x| x.to_f32()).sum();
            d[0] = Dst::from_f32(sum * inv);
        }
    } else {
        for (s, d) in pairs {
            for (c, o) in d.iter_mut().enumerate() {
                *o = Dst::from_f32(s[c % src_ch].to_f32());
            }
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::I24;

    #[test]
    fn channel_maps() {
        let mut st = [0.0f32; 6];
        assert_eq!(convert(&[0.5f32, -0.25, 1.0], 1, &mut st, 2), 3);
        assert_eq!(st, [0.5, 0.5, -0.25, -0.25, 1.0, 1.0]);
        let mut mono = [0.0f32; 2];
        assert_eq!(convert(&[0.5f32, -0.5, 1.0, 0.0], 2, &mut mono, 1), 2);
        assert_eq!(mono, [0.0, 0.5]);
        let mut four = [0.0f32; 4];
        assert_eq!(convert(&[0.1f32, 0.2], 2, &mut four, 4), 1);
        assert_eq!(four, [0.1, 0.2, 0.1, 0.2]);
        assert_eq!(convert(&[0.1f32], 0, &mut four, 4), 0);
    }

    #[test]
    fn formats_round_trip() {
        let mut i = [0i16; 3];
        convert(&[-1.0f32, 0.5, 1.0], 1, &mut i, 1);
        assert_eq!(i, [i16::MIN, 16384, i16::MAX]);
        let mut back = [0.0f32; 3];
        convert(&i, 1, &mut back, 1);
        assert_eq!(back[1], 0.5);
        let mut x = [I24(0); 1];
        convert(&[16384i16], 1, &mut x, 1);
        assert_eq!(x[0], I24(1 << 22));
        // zero stays exactly zero through every format
        let mut z = [1i32; 2];
        convert(&[I24::ZERO, I24::ZERO], 2, &mut z, 2);
        assert_eq!(z, [0, 0]);
    }
}
