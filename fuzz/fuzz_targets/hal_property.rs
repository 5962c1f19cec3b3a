//! Fuzzes the HAL plug-in's property interface (what coreaudiod hands the plug-in from any
//! client: GetPropertyData / SetPropertyData): object id, selector, scope, element, qualifier,
//! the caller's pid, the data bytes, and the output buffer size, through `Plugin::get`,
//! `Value::write` and `Plugin::set`, with the simulated CoreFoundation (CF-typed data is a
//! fake CF object of a fuzz-chosen type, as the HAL marshals property lists).
//!
//! Properties checked on every input:
//! - nothing panics, whatever the ids, sizes and bytes;
//! - `write` never reports more bytes than the buffer it was given, nor more than `size()`;
//! - a caller that is not the owner's daemon never clears hard mute;
//! - no CF reference leaks or is over-released (the fake counts live objects).
#![no_main]

use hardmute_macos_plugin::abi::*;
use hardmute_macos_plugin::cf::fake;
use hardmute_macos_plugin::consts::*;
use hardmute_macos_plugin::model::{self, Value};
use hardmute_macos_plugin::plugin::Plugin;
use libfuzzer_sys::fuzz_target;

const OBJECTS: [u32; 6] = [1, 2, 3, 4, 5, 0];

fn u32_at(d: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, x) in b.iter_mut().enumerate() {
        *x = d.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

fn cf_of(kind: u8, d: &[u8]) -> CFTypeRef {
    match kind % 5 {
        0 => fake::create(fake::Kind::Boolean(d.first().is_some_and(|b| b & 1 == 1))),
        1 => fake::number(i64::from(u32_at(d, 0) as i32)),
        2 => fake::create(fake::Kind::String(String::from_utf8_lossy(d).into_owned())),
        3 => fake::create(fake::Kind::Dictionary),
        _ => core::ptr::null(),
    }
}

fuzz_target!(|data: &[u8]| {
    static PLUGIN: Plugin = Plugin::new();
    let plugin = &PLUGIN;
    // The plug-in makes its CFStrings once, on first use: do that before counting.
    let name = AudioObjectPropertyAddress {
        mSelector: kAudioObjectPropertyManufacturer,
        mScope: kAudioObjectPropertyScopeGlobal,
        mElement: 0,
    };
    let _ = plugin.get(1, &name, &[]);
    let live_before = fake::live_objects();
    // No host (Initialize not called): the plug-in must still answer safely; muted from start.
    let mut at = 0;
    while at + 16 <= data.len() {
        let h = &data[at..at + 16];
        at += 16;
        let body_len = usize::from(h[15] % 64).min(data.len() - at);
        let body = &data[at..at + body_len];
        at += body_len;
        let id = match h[0] % 7 {
            6 => u32_at(h, 1),
            i => OBJECTS[usize::from(i)],
        };
        let selectors = [
            model::HARD_MUTE_SELECTOR,
            kAudioDevicePropertyNominalSampleRate,
            kAudioStreamPropertyVirtualFormat,
            kAudioObjectPropertyName,
            kAudioPlugInPropertyTranslateUIDToDevice,
            kAudioDevicePropertyStreams,
            kAudioObjectPropertyCustomPropertyInfoList,
            kAudioStreamPropertyAvailableVirtualFormats,
        ];
        let selector = match h[5] % 9 {
            8 => u32_at(h, 6),
            i => selectors[usize::from(i)],
        };
        let addr = AudioObjectPropertyAddress {
            mSelector: selector,
            mScope: [
                kAudioObjectPropertyScopeGlobal,
                kAudioObjectPropertyScopeInput,
                kAudioObjectPropertyScopeOutput,
                u32_at(h, 10),
            ][usize::from(h[10] % 4)],
            mElement: u32::from(h[11] % 2),
        };
        let pid = [0, 4242, 100, -1][usize::from(h[12] % 4)];
        let muted_before = plugin.control.is_muted();
        if h[13] & 1 == 0 {
            // GetPropertyData; the qualifier of TranslateUIDToDevice is a CFString reference.
            let q = cf_of(h[14], body);
            let qualifier = (q as usize).to_ne_bytes();
            let qualifier: &[u8] = if h[13] & 2 == 0 {
                &qualifier
            } else {
                &qualifier[..usize::from(h[14] % 8)]
            };
            if let Ok(value) = plugin.get(id, &addr, qualifier) {
                let capacity = u32::from(h[14]) * 2;
                let mut out = vec![0u64; (capacity as usize).div_ceil(8).max(1)];
                // SAFETY: `out` is valid, 8-aligned, for at least `capacity` bytes.
                if let Ok(n) = unsafe { value.write(out.as_mut_ptr().cast(), capacity) } {
                    assert!(n <= capacity && n <= value.size());
                    if matches!(value, Value::Cf(_) | Value::Bool(_))
                        && n as usize == core::mem::size_of::<CFTypeRef>()
                    {
                        // The HAL owns the +1 reference it got: release it as the HAL would.
                        let r = out[0] as usize as CFTypeRef;
                        // SAFETY: a +1 reference the plug-in wrote.
                        unsafe {
                            <hardmute_macos_plugin::cf::Cf as hardmute_macos_plugin::cf::CoreFoundation>::release(r)
                        };
                    }
                }
            }
            // SAFETY: our own fake object (or null).
            unsafe {
                <hardmute_macos_plugin::cf::Cf as hardmute_macos_plugin::cf::CoreFoundation>::release(q)
            };
        } else {
            // SetPropertyData: CF-typed properties get a CF reference, the rest raw bytes.
            if selector == model::HARD_MUTE_SELECTOR {
                let v = cf_of(h[14], body);
                let bytes = (v as usize).to_ne_bytes();
                let len = if h[13] & 2 == 0 {
                    bytes.len()
                } else {
                    usize::from(h[14] % 8)
                };
                let _ = plugin.set(id, pid, &addr, &bytes[..len]);
                // SAFETY: our own fake object (or null); the plug-in retains what it keeps.
                unsafe {
                    <hardmute_macos_plugin::cf::Cf as hardmute_macos_plugin::cf::CoreFoundation>::release(v)
                };
            } else {
                let _ = plugin.set(id, pid, &addr, body);
            }
        }
        // Nobody is the owner's daemon here (no client was added): hard mute is never cleared.
        assert!(
            !muted_before || plugin.control.is_muted(),
            "hard mute cleared by pid {pid}"
        );
    }
    assert_eq!(
        fake::live_objects(),
        live_before,
        "CF references leaked or over-released"
    );
});
