//! The CoreFoundation the loaded plug-in binds to: the 11 functions and two constants
//! `driver/macos/plugin/src/cf/apple.rs` uses, implemented over the plug-in's own CF fake
//! (`hardmute_macos_plugin::cf::fake`), so references the loaded bytes retain and release are the
//! very objects the simulated coreaudiod counts (+1 references, leaks, use after free).

#![allow(non_snake_case)]
// Each function's safety contract is its CoreFoundation namesake's (live CF objects or null).
#![allow(clippy::missing_safety_doc)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use hardmute_macos_plugin::abi::{CFTypeRef, CFUUIDBytes};
use hardmute_macos_plugin::cf::fake::{self, FakeCf, Kind};
use hardmute_macos_plugin::cf::CoreFoundation;

use super::{hit, S};

type CFIndex = isize;
type CFTypeID = usize;

/// Type ids this CF hands out (any distinct values; CoreFoundation's vary between releases).
pub const STRING_TYPE_ID: CFTypeID = 7;
pub const DICTIONARY_TYPE_ID: CFTypeID = 18;
pub const BOOLEAN_TYPE_ID: CFTypeID = 21;
pub const NUMBER_TYPE_ID: CFTypeID = 22;
pub const UUID_TYPE_ID: CFTypeID = 34;

const K_CF_STRING_ENCODING_UTF8: u32 = 0x0800_0100;

/// `kCFBooleanTrue` / `kCFBooleanFalse`: variables holding the CFBooleanRef, as CoreFoundation
/// exports them (the image binds the variable's address and loads the reference from it).
pub static K_CF_BOOLEAN_TRUE: AtomicUsize = AtomicUsize::new(0);
pub static K_CF_BOOLEAN_FALSE: AtomicUsize = AtomicUsize::new(0);
const _: () = assert!(std::mem::size_of::<AtomicUsize>() == 8);

/// Fills the constants (before any image is bound).
pub(crate) fn init() {
    K_CF_BOOLEAN_TRUE.store(FakeCf::boolean(true) as usize, Ordering::SeqCst);
    K_CF_BOOLEAN_FALSE.store(FakeCf::boolean(false) as usize, Ordering::SeqCst);
}

// SAFETY (every function below): the loaded plug-in passes CF references it got from the host
// (fake objects the tests made), from this shim, or the boolean constants: all live fake objects
// or null, which is the contract of the `FakeCf` methods. A bad pointer fails the fake's magic
// check and aborts the test.

pub unsafe extern "C" fn CFRetain(r: CFTypeRef) -> CFTypeRef {
    hit(S::CFRetain);
    // SAFETY: see above.
    unsafe { FakeCf::retain(r) }
}

pub unsafe extern "C" fn CFRelease(r: CFTypeRef) {
    hit(S::CFRelease);
    // SAFETY: see above.
    unsafe { FakeCf::release(r) }
}

pub unsafe extern "C" fn CFEqual(a: CFTypeRef, b: CFTypeRef) -> u8 {
    hit(S::CFEqual);
    // SAFETY: see above.
    u8::from(unsafe { FakeCf::equal(a, b) })
}

pub unsafe extern "C" fn CFGetTypeID(r: CFTypeRef) -> CFTypeID {
    hit(S::CFGetTypeID);
    match fake::kind(r) {
        Some(Kind::String(_)) => STRING_TYPE_ID,
        Some(Kind::Uuid(_)) => UUID_TYPE_ID,
        Some(Kind::Boolean(_)) => BOOLEAN_TYPE_ID,
        Some(Kind::Number(_)) => NUMBER_TYPE_ID,
        Some(Kind::Dictionary) => DICTIONARY_TYPE_ID,
        None => super::fatal("CFGetTypeID(NULL): CoreFoundation would crash here"),
    }
}

pub extern "C" fn CFUUIDGetTypeID() -> CFTypeID {
    hit(S::CFUUIDGetTypeID);
    UUID_TYPE_ID
}

pub unsafe extern "C" fn CFUUIDGetUUIDBytes(r: CFTypeRef) -> CFUUIDBytes {
    hit(S::CFUUIDGetUUIDBytes);
    match fake::kind(r) {
        Some(Kind::Uuid(bytes)) => CFUUIDBytes { bytes },
        other => super::fatal(&format!("CFUUIDGetUUIDBytes on {other:?}")),
    }
}

pub extern "C" fn CFBooleanGetTypeID() -> CFTypeID {
    hit(S::CFBooleanGetTypeID);
    BOOLEAN_TYPE_ID
}

pub unsafe extern "C" fn CFBooleanGetValue(r: CFTypeRef) -> u8 {
    hit(S::CFBooleanGetValue);
    match fake::kind(r) {
        Some(Kind::Boolean(b)) => u8::from(b),
        other => super::fatal(&format!("CFBooleanGetValue on {other:?}")),
    }
}

pub extern "C" fn CFNumberGetTypeID() -> CFTypeID {
    hit(S::CFNumberGetTypeID);
    NUMBER_TYPE_ID
}

/// CFNumberGetValue for the integer and floating types (CFNumberType values 1..=16); returns
/// whether the value was represented exactly, as CoreFoundation does.
pub unsafe extern "C" fn CFNumberGetValue(r: CFTypeRef, the_type: CFIndex, out: *mut c_void) -> u8 {
    hit(S::CFNumberGetValue);
    let Some(Kind::Number(v)) = fake::kind(r) else {
        super::fatal("CFNumberGetValue on something that is not a CFNumber")
    };
    // SAFETY: `out` points at storage of the requested type (caller contract of CFNumberGetValue).
    unsafe {
        match the_type {
            1 | 7 => {
                out.cast::<i8>().write(v as i8);
                u8::from(i8::try_from(v).is_ok())
            }
            2 | 8 => {
                out.cast::<i16>().write(v as i16);
                u8::from(i16::try_from(v).is_ok())
            }
            3 | 9 => {
                out.cast::<i32>().write(v as i32);
                u8::from(i32::try_from(v).is_ok())
            }
            4 | 10 | 11 | 14 | 15 => {
                out.cast::<i64>().write(v);
                1
            }
            5 | 12 => {
                out.cast::<f32>().write(v as f32);
                u8::from(v as f32 as i64 == v)
            }
            6 | 13 | 16 => {
                out.cast::<f64>().write(v as f64);
                u8::from(v as f64 as i64 == v)
            }
            t => super::fatal(&format!("CFNumberGetValue with CFNumberType {t}")),
        }
    }
}

pub unsafe extern "C" fn CFStringCreateWithBytes(
    _alloc: CFTypeRef,
    bytes: *const u8,
    len: CFIndex,
    encoding: u32,
    _external: u8,
) -> CFTypeRef {
    hit(S::CFStringCreateWithBytes);
    if encoding != K_CF_STRING_ENCODING_UTF8 || len < 0 || (bytes.is_null() && len != 0) {
        return std::ptr::null();
    }
    let slice = if len == 0 {
        &[][..]
    } else {
        // SAFETY: the caller passes `len` readable bytes.
        unsafe { std::slice::from_raw_parts(bytes, len as usize) }
    };
    match std::str::from_utf8(slice) {
        Ok(s) => fake::create(Kind::String(s.to_owned())),
        Err(_) => std::ptr::null(),
    }
}
