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

// ---- exclusive mode: a format the device takes natively -----------------------------------------

/// The sample encodings tried in exclusive mode after the mix format, in order: float, 24 bits
/// in a 32-bit container, 16 bits, 32 bits (every one of them one the bridge reads).
const EXCLUSIVE_ENCODINGS: [(u16, u16, u16); 4] = [
    (WAVE_FORMAT_IEEE_FLOAT, 32, 32),
    (WAVE_FORMAT_PCM, 32, 24),
    (WAVE_FORMAT_PCM, 16, 16),
    (WAVE_FORMAT_PCM, 32, 32),
];

/// `dwChannelMask` for a plain layout of `channels` (mono = front centre, stereo = front
/// left/right); 0 = let the driver decide.
pub fn channel_mask(channels: u16) -> u32 {
    match channels {
        1 => 0x4,
        2 => 0x3,
        _ => 0,
    }
}

/// A `WAVEFORMATEXTENSIBLE` (as fields) for `tag`/`bits`/`valid` at `rate` x `channels`.
pub fn extensible(tag: u16, bits: u16, valid: u16, rate: u32, channels: u16) -> RawFormat {
    RawFormat {
        tag: WAVE_FORMAT_EXTENSIBLE,
        channels,
        rate,
        block_align: channels * (bits / 8),
        bits,
        valid_bits: valid,
        subformat: Some((
            u32::from(tag),
            SUBTYPE_BASE.0,
            SUBTYPE_BASE.1,
            SUBTYPE_BASE.2,
        )),
    }
}

/// One format to try in exclusive mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub raw: RawFormat,
    /// What the bridge reads it as.
    pub format: MixFormat,
    /// The endpoint's own mix format (the glue passes the OS's structure as it came).
    pub from_mix: bool,
}

/// The formats tried in exclusive mode, in order: the endpoint's mix format (when the bridge
/// reads it), then [`EXCLUSIVE_ENCODINGS`] at the mix rate, 48 kHz and 44.1 kHz, each with the
/// mix channel count, stereo and mono. Every candidate decodes to a [`MixFormat`], so whatever
/// the device takes, the bridge's conversion reads it.
pub fn exclusive_candidates(mix: Option<RawFormat>) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    if let Some(raw) = mix {
        if let Ok(format) = MixFormat::decode(raw) {
            out.push(Candidate {
                raw,
                format,
                from_mix: true,
            });
        }
    }
    let mut rates = vec![];
    let mut channel_counts = vec![];
    for r in [mix.map(|m| m.rate), Some(48_000), Some(44_100)]
        .into_iter()
        .flatten()
    {
        if r != 0 && !rates.contains(&r) {
            rates.push(r);
        }
    }
    for c in [mix.map(|m| m.channels), Some(2), Some(1)]
        .into_iter()
        .flatten()
    {
        if c != 0 && !channel_counts.contains(&c) {
            channel_counts.push(c);
        }
    }
    for &rate in &rates {
        for &channels in &channel_counts {
            for (tag, bits, valid) in EXCLUSIVE_ENCODINGS {
                let raw = extensible(tag, bits, valid, rate, channels);
                let Ok(format) = MixFormat::decode(raw) else {
                    continue;
                };
                // The mix format itself may already be this one.
                if !out
                    .iter()
                    .any(|c| c.format == format && c.raw.valid_bits == valid)
                {
                    out.push(Candidate {
                        raw,
                        format,
                        from_mix: false,
                    });
                }
            }
        }
    }
    out
}

/// The first of [`exclusive_candidates`] that `supported` (the glue's
/// `IsFormatSupported(EXCLUSIVE)`) accepts; `None` = exclusive mode has no format here.
pub fn choose_exclusive(
    mix: Option<RawFormat>,
    mut supported: impl FnMut(&Candidate) -> bool,
) -> Option<Candidate> {
    exclusive_candidates(mix).into_iter().find(|c| supported(c))
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
    fn float_mix() -> RawFormat {
        extensible(WAVE_FORMAT_IEEE_FLOAT, 32, 32, 48_000, 2)
    }

    #[test]
    fn exclusive_candidates_start_with_the_mix_format_and_all_decode() {
        let c = exclusive_candidates(Some(float_mix()));
        assert!(c[0].from_mix && c[0].raw == float_mix(), "{:?}", c[0]);
        assert!(c.iter().skip(1).all(|c| !c.from_mix));
        // No duplicate of the mix format; every candidate is something the bridge reads, with
        // a consistent block align.
        let first = c[0].format;
        assert_eq!(
            c.iter()
                .filter(|c| c.format == first && c.raw.valid_bits == 32)
                .count(),
            1
        );
        for cand in &c {
            assert_eq!(MixFormat::decode(cand.raw), Ok(cand.format), "{cand:?}");
            assert_eq!(
                usize::from(cand.raw.block_align),
                cand.format.bytes_per_frame()
            );
        }
        // Mix rate 48 kHz: 48k and 44.1k; channels 2 and 1; four encodings each.
        assert_eq!(c.len(), 2 * 2 * 4);
        // A 24-bit-in-32 candidate is there (the usual native format of USB mics).
        assert!(c.iter().any(|c| c.raw.bits == 32
            && c.raw.valid_bits == 24
            && c.format.kind == SampleKind::I32));
        // A 44.1 kHz mono 16-bit mix: its own format first, then 44.1k, 48k.
        let mono = extensible(WAVE_FORMAT_PCM, 16, 16, 44_100, 1);
        let c = exclusive_candidates(Some(mono));
        assert_eq!(c[0].raw, mono);
        assert_eq!(c[1].format.rate, 44_100);
        assert!(c
            .iter()
            .any(|c| c.format.rate == 48_000 && c.format.channels == 2));
        // No or an unreadable mix format: the fixed list alone.
        let packed24 = raw(WAVE_FORMAT_EXTENSIBLE, 24, 24, Some(1));
        let c = exclusive_candidates(Some(packed24));
        assert!(c.iter().all(|c| !c.from_mix));
        assert!(!exclusive_candidates(None).is_empty());
    }

    #[test]
    fn the_first_format_the_device_takes_wins_and_none_means_no_exclusive_mode() {
        // A device that takes only 16-bit stereo at 48 kHz (as many USB mics do).
        let chosen = choose_exclusive(Some(float_mix()), |c| {
            c.format.kind == SampleKind::I16 && c.format.channels == 2 && c.format.rate == 48_000
        })
        .unwrap();
        assert_eq!(
            chosen.format,
            MixFormat {
                rate: 48_000,
                channels: 2,
                kind: SampleKind::I16
            }
        );
        assert_eq!(chosen.raw.subformat.unwrap().0, u32::from(WAVE_FORMAT_PCM));
        // It asks in order and stops at the first yes.
        let mut asked = 0;
        let first = choose_exclusive(Some(float_mix()), |_| {
            asked += 1;
            true
        })
        .unwrap();
        assert!(first.from_mix);
        assert_eq!(asked, 1);
        assert_eq!(choose_exclusive(Some(float_mix()), |_| false), None);
        assert_eq!(channel_mask(1), 4);
        assert_eq!(channel_mask(2), 3);
        assert_eq!(channel_mask(6), 0);
    }
}
