//! The node's properties, and which module arguments may change them.
//!
//! The module's argument string (`args = { ... }` in the drop-in) is parsed by PipeWire's own
//! parser (`pw_properties_new_string`); of it only the keys in [`ARG_KEYS`] are taken, so an
//! argument cannot, say, turn the ports' format or the node's driver role. No Rust allocation
//! here: PipeWire's `pw_properties` hold everything (this runs inside the server, where an
//! allocation failure must be an error, not an abort).

use core::ffi::{c_char, CStr};
use core::ptr;

use crate::ffi::*;

pub const NODE_NAME: &CStr = c"hardmute_mic_module";
pub const NODE_DESCRIPTION: &CStr = c"HardMute Microphone (module prototype)";
pub const MEDIA_CLASS: &CStr = c"Audio/Source/Virtual";
pub const IN_PORT_NAME: &CStr = c"input_MONO";
pub const OUT_PORT_NAME: &CStr = c"capture_MONO";
/// Tells which core the node was made on: `context` (the server's own) or `connected` (the
/// module connected one, as in a client process).
pub const CORE_KEY: &CStr = c"hardmute.module.core";

/// The module arguments that may override the defaults.
pub const ARG_KEYS: [&CStr; 6] = [
    c"node.name",
    c"node.description",
    c"media.name",
    c"media.class",
    c"priority.session",
    c"node.passive",
];

/// The node's properties: the defaults, then the allowed keys of `args`. Null on allocation
/// failure.
///
/// # Safety
/// `args` is null or NUL-terminated.
pub unsafe fn node_props(args: *const c_char, own_core: bool) -> *mut pw_properties {
    // SAFETY: the variadic list is just the terminating NULL.
    let props = unsafe { pw_properties_new(ptr::null::<c_char>()) };
    if props.is_null() {
        return props;
    }
    let core = if own_core { c"connected" } else { c"context" };
    let defaults: [(&CStr, &CStr); 8] = [
        (c"node.name", NODE_NAME),
        (c"node.description", NODE_DESCRIPTION),
        (c"media.name", NODE_DESCRIPTION),
        (c"media.class", MEDIA_CLASS),
        (c"media.type", c"Audio"),
        (c"node.virtual", c"true"),
        (c"audio.position", c"[ MONO ]"),
        (CORE_KEY, core),
    ];
    for (k, v) in defaults {
        // SAFETY: live properties, NUL-terminated static strings (copied by PipeWire).
        if unsafe { pw_properties_set(props, k.as_ptr(), v.as_ptr()) } < 0 {
            // SAFETY: our own properties.
            unsafe { pw_properties_free(props) };
            return ptr::null_mut();
        }
    }
    if !args.is_null() {
        // SAFETY: NUL-terminated (the caller's contract); parsed into a new object.
        let parsed = unsafe { pw_properties_new_string(args) };
        if !parsed.is_null() {
            let keys: [*const c_char; 7] = [
                ARG_KEYS[0].as_ptr(),
                ARG_KEYS[1].as_ptr(),
                ARG_KEYS[2].as_ptr(),
                ARG_KEYS[3].as_ptr(),
                ARG_KEYS[4].as_ptr(),
                ARG_KEYS[5].as_ptr(),
                ptr::null(),
            ];
            // SAFETY: a pw_properties begins with its spa_dict; `keys` is NULL-terminated.
            unsafe {
                pw_properties_update_keys(props, parsed.cast(), keys.as_ptr());
                pw_properties_free(parsed);
            }
        }
    }
    props
}

/// A DSP port's properties: f32 mono, named `name`. Null on allocation failure.
///
/// # Safety
/// None beyond FFI: `name` is a valid C string.
pub unsafe fn port_props(name: &CStr) -> *mut pw_properties {
    // SAFETY: the variadic list is just the terminating NULL.
    let props = unsafe { pw_properties_new(ptr::null::<c_char>()) };
    if props.is_null() {
        return props;
    }
    let items: [(&CStr, &CStr); 3] = [
        (c"port.name", name),
        (c"format.dsp", c"32 bit float mono audio"),
        (c"audio.channel", c"MONO"),
    ];
    for (k, v) in items {
        // SAFETY: live properties, NUL-terminated strings (copied by PipeWire).
        if unsafe { pw_properties_set(props, k.as_ptr(), v.as_ptr()) } < 0 {
            // SAFETY: our own properties.
            unsafe { pw_properties_free(props) };
            return ptr::null_mut();
        }
    }
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(props: *mut pw_properties, key: &CStr) -> Option<String> {
        // SAFETY: live properties; the returned string is owned by them and copied at once.
        let v = unsafe { pw_properties_get(props, key.as_ptr()) };
        // SAFETY: null or NUL-terminated.
        (!v.is_null()).then(|| unsafe { CStr::from_ptr(v) }.to_str().unwrap().to_owned())
    }

    struct Props(*mut pw_properties);
    impl Drop for Props {
        fn drop(&mut self) {
            // SAFETY: properties made by this test, freed once.
            unsafe { pw_properties_free(self.0) }
        }
    }

    #[test]
    fn defaults_without_arguments() {
        // SAFETY: null args are allowed.
        let p = Props(unsafe { node_props(ptr::null(), false) });
        assert!(!p.0.is_null());
        assert_eq!(
            get(p.0, c"node.name").as_deref(),
            Some("hardmute_mic_module")
        );
        assert_eq!(
            get(p.0, c"media.class").as_deref(),
            Some("Audio/Source/Virtual")
        );
        assert_eq!(
            get(p.0, c"node.description").as_deref(),
            Some("HardMute Microphone (module prototype)")
        );
        assert_eq!(get(p.0, CORE_KEY).as_deref(), Some("context"));
        // SAFETY: as above.
        let p2 = Props(unsafe { node_props(ptr::null(), true) });
        assert_eq!(get(p2.0, CORE_KEY).as_deref(), Some("connected"));
    }

    #[test]
    fn arguments_override_only_the_allowed_keys() {
        let args = c"{ node.name = other_mic node.description = \"Other mic\" media.class = Audio/Source priority.session = 42 node.driver = true media.type = Video hardmute.module.core = lie }";
        // SAFETY: a NUL-terminated literal.
        let p = Props(unsafe { node_props(args.as_ptr(), false) });
        assert_eq!(get(p.0, c"node.name").as_deref(), Some("other_mic"));
        assert_eq!(get(p.0, c"node.description").as_deref(), Some("Other mic"));
        assert_eq!(get(p.0, c"media.class").as_deref(), Some("Audio/Source"));
        assert_eq!(get(p.0, c"priority.session").as_deref(), Some("42"));
        assert_eq!(get(p.0, c"node.driver"), None, "not an allowed key");
        assert_eq!(get(p.0, c"media.type").as_deref(), Some("Audio"));
        assert_eq!(get(p.0, CORE_KEY).as_deref(), Some("context"));
        // Garbage arguments: the defaults stand.
        // SAFETY: a NUL-terminated literal.
        let p = Props(unsafe { node_props(c"{{{ = = [".as_ptr(), false) });
        assert!(!p.0.is_null());
        assert_eq!(
            get(p.0, c"node.name").as_deref(),
            Some("hardmute_mic_module")
        );
    }

    #[test]
    fn ports_are_f32_mono_dsp() {
        // SAFETY: a static name.
        let p = Props(unsafe { port_props(OUT_PORT_NAME) });
        assert_eq!(get(p.0, c"port.name").as_deref(), Some("capture_MONO"));
        assert_eq!(
            get(p.0, c"format.dsp").as_deref(),
            Some("32 bit float mono audio")
        );
    }
}
