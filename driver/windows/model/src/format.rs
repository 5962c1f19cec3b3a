//! Formats the HardMute capture pin offers, parsing/validation of a client's
//! `KSDATAFORMAT_WAVEFORMATEX(TENSIBLE)`, and `DataRangeIntersection`.
//!
//! Everything arrives as bytes whose lengths the caller (PortCls, or an app through KS)
//! controls, so every size field is checked against the bytes actually present before any
//! field behind it is read.

use crate::guid::*;
use crate::ks::*;
use crate::status::*;

/// Sample encodings of the capture pin (container/valid bits in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// PCM 16/16.
    Pcm16,
    /// PCM 24 valid bits in a 32-bit container (low byte zero, like WASAPI's 24-in-32).
    Pcm24In32,
    /// PCM 32/32.
    Pcm32,
    /// IEEE float 32.
    Float32,
}

impl SampleFormat {
    pub const ALL: [SampleFormat; 4] = [
        SampleFormat::Pcm16,
        SampleFormat::Pcm24In32,
        SampleFormat::Pcm32,
        SampleFormat::Float32,
    ];

    pub const fn container_bits(self) -> u16 {
        match self {
            SampleFormat::Pcm16 => 16,
            _ => 32,
        }
    }
    pub const fn valid_bits(self) -> u16 {
        match self {
            SampleFormat::Pcm16 => 16,
            SampleFormat::Pcm24In32 => 24,
            _ => 32,
        }
    }
    pub const fn bytes(self) -> usize {
        self.container_bits() as usize / 8
    }
    pub const fn sub_format(self) -> Guid {
        match self {
            SampleFormat::Float32 => KSDATAFORMAT_SUBTYPE_IEEE_FLOAT,
            _ => KSDATAFORMAT_SUBTYPE_PCM,
        }
    }
    fn from_parts(sub: &Guid, container: u16, valid: u16) -> Option<Self> {
        let fmt = if *sub == KSDATAFORMAT_SUBTYPE_PCM {
            match (container, valid) {
                (16, 16) => SampleFormat::Pcm16,
                (32, 24) => SampleFormat::Pcm24In32,
                (32, 32) => SampleFormat::Pcm32,
                _ => return None,
            }
        } else if *sub == KSDATAFORMAT_SUBTYPE_IEEE_FLOAT && container == 32 && valid == 32 {
            SampleFormat::Float32
        } else {
            return None;
        };
        Some(fmt)
    }
}

pub const SUPPORTED_RATES: [u32; 2] = [48_000, 44_100];
pub const MAX_CHANNELS: u16 = 2;

/// A negotiated stream format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamFormat {
    pub rate: u32,
    pub channels: u16,
    pub sample: SampleFormat,
}

impl StreamFormat {
    pub const fn block_align(&self) -> u32 {
        self.channels as u32 * self.sample.bytes() as u32
    }
    pub const fn byte_rate(&self) -> u32 {
        self.rate * self.block_align()
    }
    pub const fn channel_mask(&self) -> u32 {
        if self.channels == 1 {
            SPEAKER_MONO
        } else {
            SPEAKER_STEREO
        }
    }
    pub fn is_supported(&self) -> bool {
        SUPPORTED_RATES.contains(&self.rate) && (1..=MAX_CHANNELS).contains(&self.channels)
    }

    /// Writes this format as `KSDATAFORMAT_WAVEFORMATEXTENSIBLE` (104 bytes).
    pub fn write_extensible(&self, out: &mut [u8; KSDATAFORMAT_WFEXT_SIZE]) {
        out.fill(0);
        wr_u32(out, OFF_FORMAT_SIZE, KSDATAFORMAT_WFEXT_SIZE as u32);
        wr_u32(out, OFF_SAMPLE_SIZE, self.block_align());
        wr_guid(out, OFF_MAJOR, &KSDATAFORMAT_TYPE_AUDIO);
        wr_guid(out, OFF_SUB, &self.sample.sub_format());
        wr_guid(out, OFF_SPECIFIER, &KSDATAFORMAT_SPECIFIER_WAVEFORMATEX);
        wr_u16(out, OFF_WFX_TAG, WAVE_FORMAT_EXTENSIBLE);
        wr_u16(out, OFF_WFX_CHANNELS, self.channels);
        wr_u32(out, OFF_WFX_RATE, self.rate);
        wr_u32(out, OFF_WFX_AVG, self.byte_rate());
        wr_u16(out, OFF_WFX_ALIGN, self.block_align() as u16);
        wr_u16(out, OFF_WFX_BITS, self.sample.container_bits());
        wr_u16(out, OFF_WFX_CB, WAVEFORMATEXTENSIBLE_CB_SIZE);
        wr_u16(out, OFF_WFX_VALID_BITS, self.sample.valid_bits());
        wr_u32(out, OFF_WFX_MASK, self.channel_mask());
        wr_guid(out, OFF_WFX_SUB, &self.sample.sub_format());
    }
}

/// One `KSDATARANGE_AUDIO` of the capture pin. Ranges are per rate (the pin supports two
/// discrete rates, and a min..max range would claim everything in between) and per subtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioRange {
    pub sub_format: Guid,
    pub max_channels: u32,
    pub min_bits: u32,
    pub max_bits: u32,
    pub rate: u32,
}

/// The capture pin's data ranges, in preference order (the first match wins in KS).
pub const CAPTURE_RANGES: [AudioRange; 4] = [
    AudioRange {
        sub_format: KSDATAFORMAT_SUBTYPE_PCM,
        max_channels: 2,
        min_bits: 16,
        max_bits: 32,
        rate: 48_000,
    },
    AudioRange {
        sub_format: KSDATAFORMAT_SUBTYPE_PCM,
        max_channels: 2,
        min_bits: 16,
        max_bits: 32,
        rate: 44_100,
    },
    AudioRange {
        sub_format: KSDATAFORMAT_SUBTYPE_IEEE_FLOAT,
        max_channels: 2,
        min_bits: 32,
        max_bits: 32,
        rate: 48_000,
    },
    AudioRange {
        sub_format: KSDATAFORMAT_SUBTYPE_IEEE_FLOAT,
        max_channels: 2,
        min_bits: 32,
        max_bits: 32,
        rate: 44_100,
    },
];

impl AudioRange {
    pub const fn to_ks(&self) -> KsDataRangeAudio {
        KsDataRangeAudio {
            data_range: KsDataFormat {
                format_size: KSDATARANGE_AUDIO_SIZE as u32,
                flags: 0,
                sample_size: 0,
                reserved: 0,
                major_format: KSDATAFORMAT_TYPE_AUDIO,
                sub_format: self.sub_format,
                specifier: KSDATAFORMAT_SPECIFIER_WAVEFORMATEX,
            },
            maximum_channels: self.max_channels,
            minimum_bits_per_sample: self.min_bits,
            maximum_bits_per_sample: self.max_bits,
            minimum_sample_frequency: self.rate,
            maximum_sample_frequency: self.rate,
        }
    }

    /// The best format of this range within `[min_bits, max_bits]` and `max_channels`.
    fn best_within(&self, max_channels: u32, min_bits: u32, max_bits: u32) -> Option<StreamFormat> {
        let channels = self.max_channels.min(max_channels);
        if channels == 0 {
            return None;
        }
        let lo = self.min_bits.max(min_bits);
        let hi = self.max_bits.min(max_bits);
        // Highest container first; 24-in-32 is chosen only by an explicit client format.
        let sample = [
            SampleFormat::Pcm32,
            SampleFormat::Float32,
            SampleFormat::Pcm16,
        ]
        .into_iter()
        .find(|s| {
            s.sub_format() == self.sub_format && (lo..=hi).contains(&u32::from(s.container_bits()))
        })?;
        Some(StreamFormat {
            rate: self.rate,
            channels: channels as u16,
            sample,
        })
    }
}

/// Parses and validates a client's `KSDATAFORMAT` + `WAVEFORMATEX[TENSIBLE]`.
///
/// `bytes` is exactly the memory the caller vouches for (for PortCls: the `FormatSize` it
/// already validated against the IRP; we check again). Malformed => `STATUS_INVALID_PARAMETER`
/// (or `STATUS_BUFFER_TOO_SMALL` when truncated); well-formed but unsupported =>
/// `STATUS_NO_MATCH`.
pub fn parse_stream_format(bytes: &[u8]) -> Result<StreamFormat, NtStatus> {
    if bytes.len() < KSDATAFORMAT_WFX_SIZE {
        return Err(STATUS_BUFFER_TOO_SMALL);
    }
    let format_size = rd_u32(bytes, OFF_FORMAT_SIZE) as usize;
    if format_size < KSDATAFORMAT_WFX_SIZE || format_size > bytes.len() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let b = &bytes[..format_size];
    if rd_guid(b, OFF_MAJOR) != KSDATAFORMAT_TYPE_AUDIO
        || rd_guid(b, OFF_SPECIFIER) != KSDATAFORMAT_SPECIFIER_WAVEFORMATEX
    {
        return Err(STATUS_NO_MATCH);
    }
    let ks_sub = rd_guid(b, OFF_SUB);
    let tag = rd_u16(b, OFF_WFX_TAG);
    let channels = rd_u16(b, OFF_WFX_CHANNELS);
    let rate = rd_u32(b, OFF_WFX_RATE);
    let avg = rd_u32(b, OFF_WFX_AVG);
    let align = rd_u16(b, OFF_WFX_ALIGN);
    let bits = rd_u16(b, OFF_WFX_BITS);
    let cb_size = rd_u16(b, OFF_WFX_CB) as usize;

    let (sub, valid) = match tag {
        WAVE_FORMAT_PCM | WAVE_FORMAT_IEEE_FLOAT => {
            let tag_sub = if tag == WAVE_FORMAT_PCM {
                KSDATAFORMAT_SUBTYPE_PCM
            } else {
                KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
            };
            // cbSize is ignored for PCM by Windows, but it must not claim bytes that are absent.
            if KSDATAFORMAT_WFX_SIZE + cb_size > format_size || ks_sub != tag_sub {
                return Err(STATUS_INVALID_PARAMETER);
            }
            (tag_sub, bits)
        }
        WAVE_FORMAT_EXTENSIBLE => {
            if cb_size < usize::from(WAVEFORMATEXTENSIBLE_CB_SIZE)
                || format_size < KSDATAFORMAT_WFEXT_SIZE
                || KSDATAFORMAT_WFX_SIZE + cb_size > format_size
            {
                return Err(STATUS_INVALID_PARAMETER);
            }
            let sub = rd_guid(b, OFF_WFX_SUB);
            if sub != ks_sub {
                return Err(STATUS_INVALID_PARAMETER);
            }
            let valid = rd_u16(b, OFF_WFX_VALID_BITS);
            let mask = rd_u32(b, OFF_WFX_MASK);
            if valid == 0 || valid > bits {
                return Err(STATUS_INVALID_PARAMETER);
            }
            if mask != 0 && mask.count_ones() != u32::from(channels) {
                return Err(STATUS_INVALID_PARAMETER);
            }
            (sub, valid)
        }
        _ => return Err(STATUS_NO_MATCH),
    };
    if channels == 0 || bits == 0 || !bits.is_multiple_of(8) {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let expected_align = u32::from(channels) * u32::from(bits / 8);
    if u32::from(align) != expected_align
        || u64::from(avg) != u64::from(rate) * u64::from(expected_align)
    {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let sample = SampleFormat::from_parts(&sub, bits, valid).ok_or(STATUS_NO_MATCH)?;
    let format = StreamFormat {
        rate,
        channels,
        sample,
    };
    if !format.is_supported() {
        return Err(STATUS_NO_MATCH);
    }
    if tag == WAVE_FORMAT_EXTENSIBLE {
        let mask = rd_u32(b, OFF_WFX_MASK);
        if mask != 0 && mask != format.channel_mask() {
            return Err(STATUS_NO_MATCH);
        }
    }
    Ok(format)
}

/// Result of [`data_range_intersection`]: the status and the `ResultantFormatLength`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intersection {
    pub status: NtStatus,
    pub result_len: u32,
}

/// `IMiniport::DataRangeIntersection` for the capture pin.
///
/// `client` is the client's data range (its own `FormatSize` is checked against the slice),
/// `ours` the range of ours PortCls pairs it with. `out` is the result buffer; length 0 is
/// the size query (`STATUS_BUFFER_OVERFLOW` + required size).
pub fn data_range_intersection(client: &[u8], ours: &AudioRange, out: &mut [u8]) -> Intersection {
    let fail = |status| Intersection {
        status,
        result_len: 0,
    };
    if client.len() < KSDATAFORMAT_SIZE {
        return fail(STATUS_INVALID_PARAMETER);
    }
    let size = rd_u32(client, OFF_FORMAT_SIZE) as usize;
    if size < KSDATAFORMAT_SIZE || size > client.len() {
        return fail(STATUS_INVALID_PARAMETER);
    }
    let major = rd_guid(client, OFF_MAJOR);
    let sub = rd_guid(client, OFF_SUB);
    let spec = rd_guid(client, OFF_SPECIFIER);
    if (major != KSDATAFORMAT_TYPE_AUDIO && major != KSDATAFORMAT_WILDCARD)
        || (sub != ours.sub_format && sub != KSDATAFORMAT_WILDCARD)
        || (spec != KSDATAFORMAT_SPECIFIER_WAVEFORMATEX && spec != KSDATAFORMAT_WILDCARD)
    {
        return fail(STATUS_NO_MATCH);
    }
    let best =
        if spec == KSDATAFORMAT_SPECIFIER_WAVEFORMATEX && size >= KSDATARANGE_AUDIO_FIELDS_END {
            let (min_f, max_f) = (rd_u32(client, OFF_MIN_FREQ), rd_u32(client, OFF_MAX_FREQ));
            if !(min_f..=max_f).contains(&ours.rate) {
                return fail(STATUS_NO_MATCH);
            }
            ours.best_within(
                rd_u32(client, OFF_MAX_CHANNELS),
                rd_u32(client, OFF_MIN_BITS),
                rd_u32(client, OFF_MAX_BITS),
            )
        } else if spec == KSDATAFORMAT_SPECIFIER_WAVEFORMATEX {
            // Claims to be an audio range but is too short to hold the audio fields.
            return fail(STATUS_INVALID_PARAMETER);
        } else {
            ours.best_within(u32::MAX, 0, u32::MAX)
        };
    let Some(best) = best else {
        return fail(STATUS_NO_MATCH);
    };
    if out.is_empty() {
        return Intersection {
            status: STATUS_BUFFER_OVERFLOW,
            result_len: KSDATAFORMAT_WFEXT_SIZE as u32,
        };
    }
    let Some(Ok(dst)) = out
        .get_mut(..KSDATAFORMAT_WFEXT_SIZE)
        .map(<&mut [u8; KSDATAFORMAT_WFEXT_SIZE]>::try_from)
    else {
        return fail(STATUS_BUFFER_TOO_SMALL);
    };
    best.write_extensible(dst);
    Intersection {
        status: STATUS_SUCCESS,
        result_len: KSDATAFORMAT_WFEXT_SIZE as u32,
    }
}
