//! The shared-mode mix format, decoded from `WAVEFORMATEX(TENSIBLE)` fields into what the bridge
//! can convert. Portable: the FFI layer copies the fields out and calls [`MixFormat::decode`].

use hardmute_core::Sample;

pub const WAVE_FORMAT_PCM: u16 = 1;
pub const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
pub const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The tail every `KSDATAFORMAT_SUBTYPE_*` for a wave format tag shares
/// (`xxxxxxxx-0000-0010-8000-00aa00389b71`): Data2, Data3, Data4.
const SUBTYPE_BASE: (u16, u16, [u8; 8]) = (0x0000, 0x0010, [0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);

/// How one sample is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleKind {
    F32,
    I16,
    /// 32-bit container, left-justified (24 valid bits read as a full-scale i32 are still right).
    I32,
}

impl SampleKind {
    pub fn bytes(self) -> usize {
        match self {
            SampleKind::I16 => 2,
            SampleKind::F32 | SampleKind::I32 => 4,
        }
    }
}

/// The fields of a `WAVEFORMATEX`, plus the extensible part when `tag` is EXTENSIBLE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFormat {
    pub tag: u16,
    pub channels: u16,
    pub rate: u32,
    pub block_align: u16,
    pub bits: u16,
    /// `Samples.wValidBitsPerSample` (EXTENSIBLE only).
    pub valid_bits: u16,
    /// `SubFormat` as (Data1, Data2, Data3, Data4) (EXTENSIBLE only).
    pub subformat: Option<(u32, u16, u16, [u8; 8])>,
}

/// A format the bridge can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixFormat {
    pub rate: u32,
    pub channels: usize,
    pub kind: SampleKind,
}

/// Why a mix format is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    Unsupported(RawFormat),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let FormatError::Unsupported(r) = self;
        write!(
            f,
            "unsupported mix format (tag 0x{:04X}, {} bits, {} valid, {} channels, {} Hz, block {})",
            r.tag, r.bits, r.valid_bits, r.channels, r.rate, r.block_align
        )
    }
}

impl MixFormat {
    pub fn decode(raw: RawFormat) -> Result<Self, FormatError> {
        let bad = FormatError::Unsupported(raw);
        let tag = match (raw.tag, raw.subformat) {
            (WAVE_FORMAT_EXTENSIBLE, Some((data1, d2, d3, d4))) if (d2, d3, d4) == SUBTYPE_BASE => {
                u16::try_from(data1).map_err(|_| bad)?
            }
            (WAVE_FORMAT_EXTENSIBLE, _) => return Err(bad),
            (tag, _) => tag,
        };
        let valid = if raw.tag == WAVE_FORMAT_EXTENSIBLE && raw.valid_bits != 0 {
            raw.valid_bits
        } else {
            raw.bits
        };
        let kind = match (tag, raw.bits, valid) {
            (WAVE_FORMAT_IEEE_FLOAT, 32, 32) => SampleKind::F32,
            (WAVE_FORMAT_PCM, 16, 16) => SampleKind::I16,
            (WAVE_FORMAT_PCM, 32, 17..=32) => SampleKind::I32,
            _ => return Err(bad),
        };
        let channels = usize::from(raw.channels);
        if channels == 0 || raw.rate == 0 || usize::from(raw.block_align) != channels * kind.bytes()
        {
            return Err(bad);
        }
        Ok(MixFormat {
            rate: raw.rate,
            channels,
            kind,
        })
    }

    pub fn bytes_per_frame(&self) -> usize {
        self.channels * self.kind.bytes()
    }
}

/// One capture packet's samples, typed (interleaved, `MixFormat::channels` wide).
#[derive(Clone, Copy, Debug)]
pub enum Samples<'a> {
    F32(&'a [f32]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    /// `AUDCLNT_BUFFERFLAGS_SILENT`: the packet is this many frames of silence (its data must
    /// not be read).
    Silent {
        frames: usize,
    },
}

impl Samples<'_> {
    /// Frames in the packet.
    pub fn frames(&self, channels: usize) -> usize {
        let ch = channels.max(1);
        match self {
            Samples::F32(s) => s.len() / ch,
            Samples::I16(s) => s.len() / ch,
            Samples::I32(s) => s.len() / ch,
            Samples::Silent { frames } => *frames,
        }
    }

    /// Calls `f` with the packet as typed chunks of at most `chunk` samples; silence comes as
    /// `f32` zeros from `zeros` (a caller-owned buffer, so nothing is allocated).
    pub fn for_each_chunk(&self, zeros: &[f32], channels: usize, mut f: impl FnMut(ChunkRef<'_>)) {
        match *self {
            Samples::F32(s) => f(ChunkRef::F32(s)),
            Samples::I16(s) => f(ChunkRef::I16(s)),
            Samples::I32(s) => f(ChunkRef::I32(s)),
            Samples::Silent { frames } => {
                let ch = channels.max(1);
                let per = (zeros.len() / ch).max(1);
                let mut left = frames;
                while left > 0 && !zeros.is_empty() {
                    let n = left.min(per);
                    f(ChunkRef::F32(&zeros[..n * ch]));
                    left -= n;
                }
            }
        }
    }
}

/// A typed slice of samples; see [`Samples::for_each_chunk`].
#[derive(Clone, Copy, Debug)]
pub enum ChunkRef<'a> {
    F32(&'a [f32]),
    I16(&'a [i16]),
    I32(&'a [i32]),
}

impl ChunkRef<'_> {
    /// Calls the generic `f` with the slice at its own sample type.
    pub fn with<R>(self, f: impl SampleFn<R>) -> R {
        match self {
            ChunkRef::F32(s) => f.call(s),
            ChunkRef::I16(s) => f.call(s),
            ChunkRef::I32(s) => f.call(s),
        }
    }
}

/// A function generic over the sample type (closures cannot be).
pub trait SampleFn<R> {
    fn call<S: Sample>(self, samples: &[S]) -> R;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(tag: u16, bits: u16, valid: u16, sub: Option<u32>) -> RawFormat {
        RawFormat {
            tag,
            channels: 2,
            rate: 48_000,
            block_align: 2 * bits / 8,
            bits,
            valid_bits: valid,
            subformat: sub.map(|d1| (d1, SUBTYPE_BASE.0, SUBTYPE_BASE.1, SUBTYPE_BASE.2)),
        }
    }

    #[test]
    fn decodes_the_formats_shared_mode_uses() {
        let f = MixFormat::decode(raw(WAVE_FORMAT_EXTENSIBLE, 32, 32, Some(3))).unwrap();
        assert_eq!((f.kind, f.channels, f.rate), (SampleKind::F32, 2, 48_000));
        assert_eq!(f.bytes_per_frame(), 8);
        assert_eq!(
            MixFormat::decode(raw(WAVE_FORMAT_IEEE_FLOAT, 32, 0, None))
                .unwrap()
                .kind,
            SampleKind::F32
        );
        assert_eq!(
            MixFormat::decode(raw(WAVE_FORMAT_PCM, 16, 0, None))
                .unwrap()
                .kind,
            SampleKind::I16
        );
        assert_eq!(
            MixFormat::decode(raw(WAVE_FORMAT_EXTENSIBLE, 32, 24, Some(1)))
                .unwrap()
                .kind,
            SampleKind::I32,
            "24 valid bits in a 32-bit container"
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        // packed 24-bit, 8-bit, float64, a foreign subformat GUID, a bad block align, no channels
        assert!(MixFormat::decode(raw(WAVE_FORMAT_EXTENSIBLE, 24, 24, Some(1))).is_err());
        assert!(MixFormat::decode(raw(WAVE_FORMAT_PCM, 8, 0, None)).is_err());
        assert!(MixFormat::decode(raw(WAVE_FORMAT_IEEE_FLOAT, 64, 0, None)).is_err());
        let mut foreign = raw(WAVE_FORMAT_EXTENSIBLE, 32, 32, Some(3));
        foreign.subformat = Some((3, 0, 0x10, [0; 8]));
        assert!(MixFormat::decode(foreign).is_err());
        assert!(MixFormat::decode(raw(WAVE_FORMAT_EXTENSIBLE, 32, 32, None)).is_err());
        let mut misaligned = raw(WAVE_FORMAT_PCM, 16, 0, None);
        misaligned.block_align = 3;
        assert!(MixFormat::decode(misaligned).is_err());
        let mut mono0 = raw(WAVE_FORMAT_PCM, 16, 0, None);
        mono0.channels = 0;
        assert!(MixFormat::decode(mono0).is_err());
        let msg = MixFormat::decode(raw(WAVE_FORMAT_PCM, 8, 0, None))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("8 bits"), "{msg}");
    }

    #[test]
    fn silence_is_chunked_from_the_callers_zeros() {
        let zeros = [0.0f32; 8];
        let mut seen = Vec::new();
        Samples::Silent { frames: 10 }.for_each_chunk(&zeros, 2, |c| {
            let ChunkRef::F32(s) = c else {
                panic!("silence is f32")
            };
            seen.push(s.len());
        });
        assert_eq!(seen, [8, 8, 4], "10 stereo frames in chunks of 4 frames");
        assert_eq!(Samples::Silent { frames: 10 }.frames(2), 10);
        assert_eq!(Samples::I16(&[1, 2, 3, 4, 5, 6]).frames(2), 3);
    }
}
