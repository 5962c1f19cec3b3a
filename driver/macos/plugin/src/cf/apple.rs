//! The real CoreFoundation, for the plug-in running inside coreaudiod.

use super::CoreFoundation;
use crate::abi::{CFTypeRef, CFUUIDBytes};
use core::ffi::c_void;

type CFIndex = isize;
type CFTypeID = usize;
const K_CF_STRING_ENCODING_UTF8: u32 = 0x0800_0100;
const K_CF_NUMBER_SINT64_TYPE: CFIndex = 4;

#[link(name = "CoreFoundation", kind = "framework")]
extern "C" {
    static kCFBooleanTrue: CFTypeRef;
    static kCFBooleanFalse: CFTypeRef;
    fn CFRetain(cf: CFTypeRef) -> CFTypeRef;
    fn CFRelease(cf: CFTypeRef);
    fn CFEqual(a: CFTypeRef, b: CFTypeRef) -> u8;
    fn CFGetTypeID(cf: CFTypeRef) -> CFTypeID;
    fn CFUUIDGetTypeID() -> CFTypeID;
    fn CFUUIDGetUUIDBytes(uuid: CFTypeRef) -> CFUUIDBytes;
    fn CFBooleanGetTypeID() -> CFTypeID;
    fn CFBooleanGetValue(b: CFTypeRef) -> u8;
    fn CFNumberGetTypeID() -> CFTypeID;
    fn CFNumberGetValue(n: CFTypeRef, the_type: CFIndex, value_ptr: *mut c_void) -> u8;
    fn CFStringCreateWithBytes(
        alloc: CFTypeRef,
        bytes: *const u8,
        num_bytes: CFIndex,
        encoding: u32,
        is_external_representation: u8,
    ) -> CFTypeRef;
}

pub struct AppleCf;

impl CoreFoundation for AppleCf {
    fn string(s: &str) -> CFTypeRef {
        // SAFETY: `s` is valid UTF-8 of the given length for the duration of the call; a null
        // allocator means the default allocator.
        unsafe {
            CFStringCreateWithBytes(
                core::ptr::null(),
                s.as_ptr(),
                s.len() as CFIndex,
                K_CF_STRING_ENCODING_UTF8,
                0,
            )
        }
    }
    unsafe fn retain(r: CFTypeRef) -> CFTypeRef {
        if r.is_null() {
            return r;
        }
        // SAFETY: `r` is a live CF object (caller contract); CFRetain never fails on one.
        unsafe { CFRetain(r) }
    }
    unsafe fn release(r: CFTypeRef) {
        if !r.is_null() {
            // SAFETY: the caller owns one reference to `r`, which this gives up.
            unsafe { CFRelease(r) }
        }
    }
    unsafe fn equal(a: CFTypeRef, b: CFTypeRef) -> bool {
        // SAFETY: both are live CF objects (checked non-null here).
        !a.is_null() && !b.is_null() && unsafe { CFEqual(a, b) } != 0
    }
    unsafe fn uuid_bytes(r: CFTypeRef) -> Option<[u8; 16]> {
        // SAFETY: `r` is a live CF object; its type is checked before reading it as a CFUUID.
        unsafe {
            if r.is_null() || CFGetTypeID(r) != CFUUIDGetTypeID() {
                return None;
            }
            Some(CFUUIDGetUUIDBytes(r).bytes)
        }
    }
    fn boolean(v: bool) -> CFTypeRef {
        // SAFETY: the CFBoolean constants are immortal CF objects exported by CoreFoundation.
        unsafe { CFRetain(if v { kCFBooleanTrue } else { kCFBooleanFalse }) }
    }
    unsafe fn plist_as_bool(r: CFTypeRef) -> Option<bool> {
        if r.is_null() {
            return None;
        }
        // SAFETY: `r` is a live CF object; each accessor is used only after its type id matched.
        unsafe {
            let t = CFGetTypeID(r);
            if t == CFBooleanGetTypeID() {
                return Some(CFBooleanGetValue(r) != 0);
            }
            if t == CFNumberGetTypeID() {
                let mut v: i64 = 0;
                if CFNumberGetValue(r, K_CF_NUMBER_SINT64_TYPE, (&mut v as *mut i64).cast()) != 0 {
                    return Some(v != 0);
                }
            }
        }
        None
    }
}
