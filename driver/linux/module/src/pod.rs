//! A hand-built `spa_pod`: the node-level `EnumFormat` the module offers (audio/raw, F32P,
//! mono), the one param WirePlumber's audio session item asks a node for before it will route
//! apps to it (`si-audio-adapter`: "no usable format found for node" without it).
//!
//! The bytes are what `spa_format_audio_raw_build()` makes for the same `spa_audio_info_raw`;
//! the unit test `the_pod_is_what_spa_builds` compiles that C call against the installed
//! headers and compares byte for byte.
//!
//! Layout (spa/pod/pod.h, all u32 little-endian, every value padded to 8 bytes):
//! object header `{size, SPA_TYPE_Object}`, body `{SPA_TYPE_OBJECT_Format, param id}`, then one
//! property per key: `{key, flags, {size, type}, value}`.

/// `SPA_TYPE_Id`, `SPA_TYPE_Int`, `SPA_TYPE_Array`, `SPA_TYPE_Object`.
const TYPE_ID: u32 = 3;
const TYPE_INT: u32 = 4;
const TYPE_ARRAY: u32 = 13;
const TYPE_OBJECT: u32 = 15;
/// `SPA_TYPE_OBJECT_Format`.
const OBJECT_FORMAT: u32 = 0x0004_0003;
/// `SPA_PARAM_EnumFormat`.
pub const PARAM_ENUM_FORMAT: u32 = 3;
/// `SPA_FORMAT_mediaType`, `_mediaSubtype`, `SPA_FORMAT_AUDIO_format`, `_rate`, `_channels`,
/// `_position`.
const KEY_MEDIA_TYPE: u32 = 1;
const KEY_MEDIA_SUBTYPE: u32 = 2;
const KEY_AUDIO_FORMAT: u32 = 0x1_0001;
const KEY_AUDIO_RATE: u32 = 0x1_0003;
const KEY_AUDIO_CHANNELS: u32 = 0x1_0004;
const KEY_AUDIO_POSITION: u32 = 0x1_0005;
/// `SPA_MEDIA_TYPE_audio`, `SPA_MEDIA_SUBTYPE_raw`, `SPA_AUDIO_FORMAT_F32P`,
/// `SPA_AUDIO_CHANNEL_MONO`.
const MEDIA_AUDIO: u32 = 1;
const SUBTYPE_RAW: u32 = 1;
pub const AUDIO_F32P: u32 = 0x206;
const CHANNEL_MONO: u32 = 2;

/// Words in the pod: 2 (header) + 2 (object body) + 5 * 6 (Id/Int props) + 8 (the array).
pub const WORDS: usize = 42;

/// The EnumFormat pod for mono F32P at `rate` Hz, as u32 words (8-byte aligned as a whole
/// because the array is of u32 pairs; see [`Pod`]).
pub const fn mono_f32p(rate: u32) -> [u32; WORDS] {
    let body = ((WORDS - 2) * 4) as u32;
    [
        body,
        TYPE_OBJECT,
        OBJECT_FORMAT,
        PARAM_ENUM_FORMAT,
        // mediaType: Id audio
        KEY_MEDIA_TYPE,
        0,
        4,
        TYPE_ID,
        MEDIA_AUDIO,
        0,
        // mediaSubtype: Id raw
        KEY_MEDIA_SUBTYPE,
        0,
        4,
        TYPE_ID,
        SUBTYPE_RAW,
        0,
        // format: Id F32P
        KEY_AUDIO_FORMAT,
        0,
        4,
        TYPE_ID,
        AUDIO_F32P,
        0,
        // rate: Int
        KEY_AUDIO_RATE,
        0,
        4,
        TYPE_INT,
        rate,
        0,
        // channels: Int 1
        KEY_AUDIO_CHANNELS,
        0,
        4,
        TYPE_INT,
        1,
        0,
        // position: Array of one Id (child header {4, Id}, then MONO), padded
        KEY_AUDIO_POSITION,
        0,
        12,
        TYPE_ARRAY,
        4,
        TYPE_ID,
        CHANNEL_MONO,
        0,
    ]
}

/// The pod with the alignment `spa_pod` needs (8 bytes).
#[repr(C, align(8))]
pub struct Pod(pub [u32; WORDS]);

const _: () = {
    assert!(core::mem::size_of::<Pod>() == 168);
    assert!(core::mem::align_of::<Pod>() == 8);
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn sizes_add_up() {
        let p = mono_f32p(48_000);
        assert_eq!(p[0] as usize, (WORDS - 2) * 4, "object body size");
        assert_eq!(p[1], TYPE_OBJECT);
        assert_eq!(p[26], 48_000);
    }

    /// The same info through `spa_format_audio_raw_build` (the installed headers), byte for byte.
    #[test]
    fn the_pod_is_what_spa_builds() {
        let dir = std::env::temp_dir().join(format!("hm-module-pod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("pod.c");
        std::fs::write(
            &src,
            r#"#include <stdio.h>
#include <spa/param/audio/format-utils.h>
#include <spa/pod/builder.h>
int main(void) {
    uint8_t buf[1024];
    struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
    struct spa_audio_info_raw info = { .format = SPA_AUDIO_FORMAT_F32P, .rate = 44100,
        .channels = 1, .position = { SPA_AUDIO_CHANNEL_MONO } };
    const struct spa_pod *p = spa_format_audio_raw_build(&b, SPA_PARAM_EnumFormat, &info);
    const uint32_t *w = (const uint32_t *)p;
    for (size_t i = 0; i < SPA_POD_SIZE(p) / 4; i++) printf("%u ", w[i]);
    printf("\n");
    return 0;
}
"#,
        )
        .unwrap();
        let cflags = Command::new("pkg-config")
            .args(["--cflags", "libspa-0.2"])
            .output()
            .expect("pkg-config");
        assert!(cflags.status.success(), "libspa-0.2 headers missing");
        let cflags = String::from_utf8(cflags.stdout).unwrap();
        let exe = dir.join("pod");
        let ok = Command::new("cc")
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .args(cflags.split_whitespace())
            .status()
            .expect("a C compiler")
            .success();
        assert!(ok);
        let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();
        let spa: Vec<u32> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
        assert_eq!(&mono_f32p(44_100)[..], &spa[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
