//! Byte layouts of the KS audio structures the miniport reads and writes.
//!
//! PortCls hands the miniport raw pointers to variable-length KS structures whose sizes are
//! declared *inside* them (`FormatSize`, `cbSize`). The portable code therefore works on byte
//! slices with explicit little-endian offsets and never casts untrusted memory to a struct.
//! The `#[repr(C)]` mirrors below document the layouts and pin the sizes/offsets the kernel
//! crate's DDK bindings must match (`KSDATARANGE_AUDIO` = 88, not 84: `KSDATAFORMAT` is a
//! union with a `LONGLONG Alignment` member, so it is 8-byte aligned and the 84 bytes of
//! fields are padded to 88).

use crate::guid::Guid;
use core::mem::{align_of, offset_of, size_of};

/// `KSDATAFORMAT` / `KSDATARANGE` (same struct): 64 bytes, 8-byte aligned.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KsDataFormat {
    pub format_size: u32,
    pub flags: u32,
    pub sample_size: u32,
    pub reserved: u32,
    pub major_format: Guid,
    pub sub_format: Guid,
    pub specifier: Guid,
}

/// `KSDATARANGE_AUDIO`: 84 bytes of fields, 88 bytes with the tail padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KsDataRangeAudio {
    pub data_range: KsDataFormat,
    pub maximum_channels: u32,
    pub minimum_bits_per_sample: u32,
    pub maximum_bits_per_sample: u32,
    pub minimum_sample_frequency: u32,
    pub maximum_sample_frequency: u32,
}

/// `WAVEFORMATEX` (declared under `#pragma pack(1)` in mmreg.h: 18 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct WaveFormatEx {
    pub format_tag: u16,
    pub channels: u16,
    pub samples_per_sec: u32,
    pub avg_bytes_per_sec: u32,
    pub block_align: u16,
    pub bits_per_sample: u16,
    pub cb_size: u16,
}

/// `WAVEFORMATEXTENSIBLE`: 40 bytes (cbSize = 22).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct WaveFormatExtensible {
    pub format: WaveFormatEx,
    pub valid_bits_per_sample: u16,
    pub channel_mask: u32,
    pub sub_format: Guid,
}

/// `KSDATAFORMAT_WAVEFORMATEXTENSIBLE`: what DataRangeIntersection writes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KsDataFormatWaveFormatExtensible {
    pub data_format: KsDataFormat,
    pub wave: WaveFormatExtensible,
}

/// `KSAUDIO_POSITION` (two ULONGLONG byte offsets into the cyclic buffer).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KsAudioPosition {
    pub play_offset: u64,
    pub write_offset: u64,
}

pub const KSDATAFORMAT_SIZE: usize = 64;
pub const KSDATARANGE_AUDIO_SIZE: usize = 88;
/// End of the last `KSDATARANGE_AUDIO` field: clients may legitimately pass 84.
pub const KSDATARANGE_AUDIO_FIELDS_END: usize = 84;
pub const WAVEFORMATEX_SIZE: usize = 18;
pub const WAVEFORMATEXTENSIBLE_SIZE: usize = 40;
pub const WAVEFORMATEXTENSIBLE_CB_SIZE: u16 = 22;
pub const KSDATAFORMAT_WFX_SIZE: usize = KSDATAFORMAT_SIZE + WAVEFORMATEX_SIZE;
pub const KSDATAFORMAT_WFEXT_SIZE: usize = 104;

// Offsets inside KSDATAFORMAT.
pub const OFF_FORMAT_SIZE: usize = 0;
pub const OFF_FLAGS: usize = 4;
pub const OFF_SAMPLE_SIZE: usize = 8;
pub const OFF_MAJOR: usize = 16;
pub const OFF_SUB: usize = 32;
pub const OFF_SPECIFIER: usize = 48;
// Offsets inside KSDATARANGE_AUDIO.
pub const OFF_MAX_CHANNELS: usize = 64;
pub const OFF_MIN_BITS: usize = 68;
pub const OFF_MAX_BITS: usize = 72;
pub const OFF_MIN_FREQ: usize = 76;
pub const OFF_MAX_FREQ: usize = 80;
// Offsets of WAVEFORMATEX(TENSIBLE) fields relative to the start of the KS format (+64).
pub const OFF_WFX: usize = KSDATAFORMAT_SIZE;
pub const OFF_WFX_TAG: usize = OFF_WFX;
pub const OFF_WFX_CHANNELS: usize = OFF_WFX + 2;
pub const OFF_WFX_RATE: usize = OFF_WFX + 4;
pub const OFF_WFX_AVG: usize = OFF_WFX + 8;
pub const OFF_WFX_ALIGN: usize = OFF_WFX + 12;
pub const OFF_WFX_BITS: usize = OFF_WFX + 14;
pub const OFF_WFX_CB: usize = OFF_WFX + 16;
pub const OFF_WFX_VALID_BITS: usize = OFF_WFX + 18;
pub const OFF_WFX_MASK: usize = OFF_WFX + 20;
pub const OFF_WFX_SUB: usize = OFF_WFX + 24;

const _: () = {
    assert!(size_of::<KsDataFormat>() == KSDATAFORMAT_SIZE && align_of::<KsDataFormat>() == 8);
    assert!(offset_of!(KsDataFormat, format_size) == OFF_FORMAT_SIZE);
    assert!(offset_of!(KsDataFormat, flags) == OFF_FLAGS);
    assert!(offset_of!(KsDataFormat, sample_size) == OFF_SAMPLE_SIZE);
    assert!(offset_of!(KsDataFormat, major_format) == OFF_MAJOR);
    assert!(offset_of!(KsDataFormat, sub_format) == OFF_SUB);
    assert!(offset_of!(KsDataFormat, specifier) == OFF_SPECIFIER);
    assert!(size_of::<KsDataRangeAudio>() == KSDATARANGE_AUDIO_SIZE);
    assert!(offset_of!(KsDataRangeAudio, maximum_channels) == OFF_MAX_CHANNELS);
    assert!(offset_of!(KsDataRangeAudio, minimum_bits_per_sample) == OFF_MIN_BITS);
    assert!(offset_of!(KsDataRangeAudio, maximum_bits_per_sample) == OFF_MAX_BITS);
    assert!(offset_of!(KsDataRangeAudio, minimum_sample_frequency) == OFF_MIN_FREQ);
    assert!(offset_of!(KsDataRangeAudio, maximum_sample_frequency) == OFF_MAX_FREQ);
    assert!(size_of::<WaveFormatEx>() == WAVEFORMATEX_SIZE);
    assert!(size_of::<WaveFormatExtensible>() == WAVEFORMATEXTENSIBLE_SIZE);
    assert!(
        offset_of!(WaveFormatExtensible, valid_bits_per_sample) + OFF_WFX == OFF_WFX_VALID_BITS
    );
    assert!(offset_of!(WaveFormatExtensible, channel_mask) + OFF_WFX == OFF_WFX_MASK);
    assert!(offset_of!(WaveFormatExtensible, sub_format) + OFF_WFX == OFF_WFX_SUB);
    assert!(size_of::<KsDataFormatWaveFormatExtensible>() == KSDATAFORMAT_WFEXT_SIZE);
    assert!(offset_of!(KsDataFormatWaveFormatExtensible, wave) == OFF_WFX);
    assert!(size_of::<KsAudioPosition>() == 16);
};

/// `WAVE_FORMAT_*` tags.
pub const WAVE_FORMAT_PCM: u16 = 0x0001;
pub const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
pub const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// `KSAUDIO_SPEAKER_MONO` / `KSAUDIO_SPEAKER_STEREO`.
pub const SPEAKER_MONO: u32 = 0x4;
pub const SPEAKER_STEREO: u32 = 0x3;

pub(crate) fn rd_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
pub(crate) fn rd_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
pub(crate) fn rd_guid(b: &[u8], off: usize) -> Guid {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    Guid::read_le(&a)
}
pub(crate) fn wr_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn wr_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn wr_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn wr_guid(b: &mut [u8], off: usize, g: &Guid) {
    let mut a = [0u8; 16];
    g.write_le(&mut a);
    b[off..off + 16].copy_from_slice(&a);
}
