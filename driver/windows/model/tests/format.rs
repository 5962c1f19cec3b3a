//! Format negotiation: DataRangeIntersection and WAVEFORMATEX(TENSIBLE) validation.
mod common;

use common::*;
use hardmute_windows_model::format::*;
use hardmute_windows_model::guid::*;
use hardmute_windows_model::ks::*;
use hardmute_windows_model::status::*;
use proptest::prelude::*;

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_guid(b: &mut [u8], off: usize, g: Guid) {
    let mut a = [0u8; 16];
    g.write_le(&mut a);
    b[off..off + 16].copy_from_slice(&a);
}

/// A plain (non-extensible) KSDATAFORMAT_WAVEFORMATEX as older clients send it.
fn plain_wfx(tag: u16, sub: Guid, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let mut b = vec![0u8; KSDATAFORMAT_WFX_SIZE];
    put_u32(&mut b, OFF_FORMAT_SIZE, KSDATAFORMAT_WFX_SIZE as u32);
    put_guid(&mut b, OFF_MAJOR, KSDATAFORMAT_TYPE_AUDIO);
    put_guid(&mut b, OFF_SUB, sub);
    put_guid(&mut b, OFF_SPECIFIER, KSDATAFORMAT_SPECIFIER_WAVEFORMATEX);
    let align = channels * bits / 8;
    put_u16(&mut b, OFF_WFX_TAG, tag);
    put_u16(&mut b, OFF_WFX_CHANNELS, channels);
    put_u32(&mut b, OFF_WFX_RATE, rate);
    put_u32(&mut b, OFF_WFX_AVG, rate * u32::from(align));
    put_u16(&mut b, OFF_WFX_ALIGN, align);
    put_u16(&mut b, OFF_WFX_BITS, bits);
    b
}

fn stereo48(sample: SampleFormat) -> StreamFormat {
    StreamFormat {
        rate: 48_000,
        channels: 2,
        sample,
    }
}

#[test]
fn every_offered_format_round_trips_through_extensible() {
    for f in all_formats() {
        let bytes = extensible_bytes(&f);
        assert_eq!(parse_stream_format(&bytes), Ok(f), "{f:?}");
        // and with trailing bytes beyond FormatSize (a larger IRP buffer)
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xEE; 24]);
        assert_eq!(parse_stream_format(&longer), Ok(f));
    }
}

#[test]
fn plain_waveformatex_pcm_and_float_are_accepted() {
    let pcm = plain_wfx(WAVE_FORMAT_PCM, KSDATAFORMAT_SUBTYPE_PCM, 2, 44_100, 16);
    assert_eq!(
        parse_stream_format(&pcm),
        Ok(StreamFormat {
            rate: 44_100,
            channels: 2,
            sample: SampleFormat::Pcm16
        })
    );
    let float = plain_wfx(
        WAVE_FORMAT_IEEE_FLOAT,
        KSDATAFORMAT_SUBTYPE_IEEE_FLOAT,
        1,
        48_000,
        32,
    );
    assert_eq!(
        parse_stream_format(&float),
        Ok(StreamFormat {
            rate: 48_000,
            channels: 1,
            sample: SampleFormat::Float32
        })
    );
    // Tag and KS subtype disagree.
    let bad = plain_wfx(
        WAVE_FORMAT_PCM,
        KSDATAFORMAT_SUBTYPE_IEEE_FLOAT,
        2,
        48_000,
        32,
    );
    assert_eq!(parse_stream_format(&bad), Err(STATUS_INVALID_PARAMETER));
}

#[test]
fn bogus_sizes_are_rejected_before_any_field_behind_them_is_used() {
    let good = extensible_bytes(&stereo48(SampleFormat::Pcm24In32));
    // Truncated buffers.
    for len in [0, 10, 63, 64, 81] {
        assert_eq!(
            parse_stream_format(&good[..len]),
            Err(STATUS_BUFFER_TOO_SMALL),
            "len {len}"
        );
    }
    // FormatSize larger than the bytes present, or too small to hold a WAVEFORMATEX.
    for fs in [KSDATAFORMAT_WFEXT_SIZE as u32 + 1, u32::MAX, 0, 64, 81] {
        let mut b = good.clone();
        put_u32(&mut b, OFF_FORMAT_SIZE, fs);
        assert_eq!(
            parse_stream_format(&b),
            Err(STATUS_INVALID_PARAMETER),
            "FormatSize {fs}"
        );
    }
    // Extensible but FormatSize cuts the extension off (cbSize says 22).
    let mut b = good.clone();
    put_u32(&mut b, OFF_FORMAT_SIZE, 90);
    assert_eq!(parse_stream_format(&b), Err(STATUS_INVALID_PARAMETER));
    // cbSize too small for EXTENSIBLE, or claiming bytes beyond FormatSize.
    for cb in [0u16, 21, 23, 0xFFFF] {
        let mut b = good.clone();
        put_u16(&mut b, OFF_WFX_CB, cb);
        assert_eq!(
            parse_stream_format(&b),
            Err(STATUS_INVALID_PARAMETER),
            "cbSize {cb}"
        );
    }
    // Plain PCM with a cbSize pointing past the end.
    let mut pcm = plain_wfx(WAVE_FORMAT_PCM, KSDATAFORMAT_SUBTYPE_PCM, 2, 48_000, 16);
    put_u16(&mut pcm, OFF_WFX_CB, 8);
    assert_eq!(parse_stream_format(&pcm), Err(STATUS_INVALID_PARAMETER));
}

#[test]
fn inconsistent_or_unsupported_extensible_fields_are_rejected() {
    let good = extensible_bytes(&stereo48(SampleFormat::Pcm16));
    let check = |edit: &dyn Fn(&mut Vec<u8>), want: NtStatus, what: &str| {
        let mut b = good.clone();
        edit(&mut b);
        assert_eq!(parse_stream_format(&b), Err(want), "{what}");
    };
    check(
        &|b| put_guid(b, OFF_WFX_SUB, KSDATAFORMAT_SUBTYPE_IEEE_FLOAT),
        STATUS_INVALID_PARAMETER,
        "subformat mismatch",
    );
    check(
        &|b| put_u16(b, OFF_WFX_VALID_BITS, 17),
        STATUS_INVALID_PARAMETER,
        "valid > container",
    );
    check(
        &|b| put_u16(b, OFF_WFX_VALID_BITS, 0),
        STATUS_INVALID_PARAMETER,
        "valid 0",
    );
    check(
        &|b| put_u32(b, OFF_WFX_MASK, 0x7),
        STATUS_INVALID_PARAMETER,
        "mask with 3 speakers for 2 channels",
    );
    check(
        &|b| put_u32(b, OFF_WFX_MASK, 0x30),
        STATUS_NO_MATCH,
        "back pair is not our stereo",
    );
    check(
        &|b| put_u16(b, OFF_WFX_ALIGN, 3),
        STATUS_INVALID_PARAMETER,
        "block align",
    );
    check(
        &|b| put_u32(b, OFF_WFX_AVG, 1),
        STATUS_INVALID_PARAMETER,
        "avg bytes",
    );
    check(
        &|b| put_guid(b, OFF_MAJOR, Guid::NULL),
        STATUS_NO_MATCH,
        "not audio",
    );
    check(
        &|b| put_guid(b, OFF_SPECIFIER, Guid::NULL),
        STATUS_NO_MATCH,
        "not WAVEFORMATEX specifier",
    );
    check(
        &|b| put_u16(b, OFF_WFX_TAG, 0x0055),
        STATUS_NO_MATCH,
        "mp3 tag",
    );
    check(
        &|b| put_u16(b, OFF_WFX_CHANNELS, 0),
        STATUS_INVALID_PARAMETER,
        "0 channels",
    );
    check(
        &|b| {
            put_u32(b, OFF_WFX_RATE, 96_000);
            put_u32(b, OFF_WFX_AVG, 96_000 * 4);
        },
        STATUS_NO_MATCH,
        "96 kHz",
    );
    check(
        &|b| {
            put_u16(b, OFF_WFX_CHANNELS, 4);
            put_u16(b, OFF_WFX_ALIGN, 8);
            put_u32(b, OFF_WFX_AVG, 48_000 * 8);
            put_u32(b, OFF_WFX_MASK, 0);
        },
        STATUS_NO_MATCH,
        "4 channels",
    );
    check(
        &|b| {
            // 24 valid bits in a 24-bit container: a real format, not one we offer.
            put_u16(b, OFF_WFX_BITS, 24);
            put_u16(b, OFF_WFX_VALID_BITS, 24);
            put_u16(b, OFF_WFX_ALIGN, 6);
            put_u32(b, OFF_WFX_AVG, 48_000 * 6);
        },
        STATUS_NO_MATCH,
        "packed 24",
    );
}

fn client_range(sub: Guid, max_ch: u32, bits: (u32, u32), freq: (u32, u32)) -> Vec<u8> {
    let r = AudioRange {
        sub_format: sub,
        max_channels: max_ch,
        min_bits: bits.0,
        max_bits: bits.1,
        rate: 0,
    };
    let mut ks = r.to_ks();
    ks.minimum_sample_frequency = freq.0;
    ks.maximum_sample_frequency = freq.1;
    let mut b = vec![0u8; KSDATARANGE_AUDIO_SIZE];
    put_u32(&mut b, OFF_FORMAT_SIZE, KSDATARANGE_AUDIO_SIZE as u32);
    put_guid(&mut b, OFF_MAJOR, ks.data_range.major_format);
    put_guid(&mut b, OFF_SUB, ks.data_range.sub_format);
    put_guid(&mut b, OFF_SPECIFIER, ks.data_range.specifier);
    put_u32(&mut b, OFF_MAX_CHANNELS, ks.maximum_channels);
    put_u32(&mut b, OFF_MIN_BITS, ks.minimum_bits_per_sample);
    put_u32(&mut b, OFF_MAX_BITS, ks.maximum_bits_per_sample);
    put_u32(&mut b, OFF_MIN_FREQ, ks.minimum_sample_frequency);
    put_u32(&mut b, OFF_MAX_FREQ, ks.maximum_sample_frequency);
    b
}

fn intersect(client: &[u8], ours: &AudioRange) -> (Intersection, Option<StreamFormat>) {
    let mut out = [0u8; 128];
    let r = data_range_intersection(client, ours, &mut out);
    let parsed = (r.status == STATUS_SUCCESS)
        .then(|| parse_stream_format(&out[..r.result_len as usize]).unwrap());
    (r, parsed)
}

#[test]
fn wildcard_client_range_gets_the_best_format_of_each_range() {
    let mut wildcard = vec![0u8; KSDATAFORMAT_SIZE];
    put_u32(&mut wildcard, OFF_FORMAT_SIZE, KSDATAFORMAT_SIZE as u32);
    for ours in &CAPTURE_RANGES {
        let (r, f) = intersect(&wildcard, ours);
        assert_eq!(r.status, STATUS_SUCCESS);
        assert_eq!(r.result_len as usize, KSDATAFORMAT_WFEXT_SIZE);
        let f = f.unwrap();
        assert_eq!(
            (f.rate, f.channels, f.sample.container_bits()),
            (ours.rate, 2, 32)
        );
        assert_eq!(f.sample.sub_format(), ours.sub_format);
    }
}

#[test]
fn intersection_size_query_and_small_buffer() {
    let client = client_range(KSDATAFORMAT_SUBTYPE_PCM, 2, (16, 16), (48_000, 48_000));
    let r = data_range_intersection(&client, &CAPTURE_RANGES[0], &mut []);
    assert_eq!(
        r,
        Intersection {
            status: STATUS_BUFFER_OVERFLOW,
            result_len: KSDATAFORMAT_WFEXT_SIZE as u32
        }
    );
    let mut small = [0u8; KSDATAFORMAT_WFEXT_SIZE - 1];
    assert_eq!(
        data_range_intersection(&client, &CAPTURE_RANGES[0], &mut small).status,
        STATUS_BUFFER_TOO_SMALL
    );
}

#[test]
fn intersection_respects_the_client_range() {
    let pcm48 = &CAPTURE_RANGES[0];
    let pcm44 = &CAPTURE_RANGES[1];
    let float48 = &CAPTURE_RANGES[2];
    // Client wants 44.1 kHz only.
    let c = client_range(KSDATAFORMAT_SUBTYPE_PCM, 2, (16, 32), (44_100, 44_100));
    assert_eq!(intersect(&c, pcm48).0.status, STATUS_NO_MATCH);
    assert_eq!(intersect(&c, pcm44).1.unwrap().rate, 44_100);
    // Mono, 16-bit only.
    let c = client_range(KSDATAFORMAT_SUBTYPE_PCM, 1, (16, 16), (8_000, 192_000));
    assert_eq!(
        intersect(&c, pcm48).1,
        Some(StreamFormat {
            rate: 48_000,
            channels: 1,
            sample: SampleFormat::Pcm16
        })
    );
    // 24-bit containers only: we have none.
    let c = client_range(KSDATAFORMAT_SUBTYPE_PCM, 2, (24, 24), (48_000, 48_000));
    assert_eq!(intersect(&c, pcm48).0.status, STATUS_NO_MATCH);
    // Float client against a PCM range, and vice versa.
    let c = client_range(
        KSDATAFORMAT_SUBTYPE_IEEE_FLOAT,
        2,
        (32, 32),
        (48_000, 48_000),
    );
    assert_eq!(intersect(&c, pcm48).0.status, STATUS_NO_MATCH);
    assert_eq!(
        intersect(&c, float48).1.unwrap().sample,
        SampleFormat::Float32
    );
    // Zero channels.
    let c = client_range(KSDATAFORMAT_SUBTYPE_PCM, 0, (16, 32), (48_000, 48_000));
    assert_eq!(intersect(&c, pcm48).0.status, STATUS_NO_MATCH);
    // An 84-byte KSDATARANGE_AUDIO (fields without tail padding) is fine.
    let mut c = client_range(KSDATAFORMAT_SUBTYPE_PCM, 2, (16, 16), (48_000, 48_000));
    put_u32(&mut c, OFF_FORMAT_SIZE, 84);
    assert_eq!(
        intersect(&c[..84], pcm48).1.unwrap().sample,
        SampleFormat::Pcm16
    );
}

#[test]
fn intersection_rejects_malformed_client_ranges() {
    let c = client_range(KSDATAFORMAT_SUBTYPE_PCM, 2, (16, 32), (48_000, 48_000));
    let ours = &CAPTURE_RANGES[0];
    assert_eq!(intersect(&c[..40], ours).0.status, STATUS_INVALID_PARAMETER);
    let mut lying = c.clone();
    put_u32(&mut lying, OFF_FORMAT_SIZE, 4096);
    assert_eq!(intersect(&lying, ours).0.status, STATUS_INVALID_PARAMETER);
    let mut short_audio = c.clone();
    put_u32(&mut short_audio, OFF_FORMAT_SIZE, 70);
    assert_eq!(
        intersect(&short_audio, ours).0.status,
        STATUS_INVALID_PARAMETER
    );
}

proptest! {
    #[test]
    fn parse_never_panics_and_accepts_only_offered_formats(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        if let Ok(f) = parse_stream_format(&bytes) {
            prop_assert!(f.is_supported());
            prop_assert!(all_formats().contains(&f));
        }
    }

    #[test]
    fn mutated_valid_formats_are_rejected_or_consistent(
        idx in 0usize..16, pos in 0usize..KSDATAFORMAT_WFEXT_SIZE, val in any::<u8>()
    ) {
        let f = all_formats()[idx];
        let mut b = extensible_bytes(&f);
        b[pos] = val;
        if let Ok(g) = parse_stream_format(&b) {
            // Whatever was accepted must describe itself consistently.
            let reencoded = extensible_bytes(&g);
            prop_assert_eq!(parse_stream_format(&reencoded), Ok(g));
            prop_assert_eq!(u32::from(g.channels) * g.sample.bytes() as u32, g.block_align());
        }
    }

    #[test]
    fn intersection_results_lie_inside_both_ranges(
        which in 0usize..4, sub_float in any::<bool>(), max_ch in 0u32..4,
        min_bits in 0u32..40, span in 0u32..40, fmin in 0u32..60_000, fspan in 0u32..60_000,
        size_query in any::<bool>()
    ) {
        let sub = if sub_float { KSDATAFORMAT_SUBTYPE_IEEE_FLOAT } else { KSDATAFORMAT_SUBTYPE_PCM };
        let c = client_range(sub, max_ch, (min_bits, min_bits + span), (fmin, fmin + fspan));
        let ours = &CAPTURE_RANGES[which];
        if size_query {
            let r = data_range_intersection(&c, ours, &mut []);
            prop_assert!(r.status == STATUS_BUFFER_OVERFLOW || r.status == STATUS_NO_MATCH);
        } else if let (r, Some(f)) = intersect(&c, ours) {
            prop_assert_eq!(r.status, STATUS_SUCCESS);
            prop_assert_eq!(f.rate, ours.rate);
            prop_assert!((fmin..=fmin + fspan).contains(&f.rate));
            prop_assert!(u32::from(f.channels) <= max_ch.min(2));
            let bits = u32::from(f.sample.container_bits());
            prop_assert!((min_bits..=min_bits + span).contains(&bits));
            prop_assert_eq!(f.sample.sub_format(), sub);
        }
    }
}
