//! A small imitation of CoreFoundation for running the plug-in off macOS (the simulated coreaudiod).
//!
//! Objects are heap boxes with a magic word, a kind and an atomic reference count; `live_objects()`
//! counts boxes not yet freed, so tests can prove the plug-in hands out exactly one +1 reference per
//! GetPropertyData and never leaks or over-releases. kCFBooleanTrue/False are immortal statics, as in
//! CoreFoundation. Releasing an unknown pointer or a dead object aborts the test loudly.

use super::CoreFoundation;
use crate::abi::CFTypeRef;
use std::sync::atomic::{AtomicIsize, Ordering};

const MAGIC: u64 = 0x4846_4b43_4652_4546; // "HFKCFREF"

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String(String),
    Uuid([u8; 16]),
    Boolean(bool),
    Number(i64),
    Dictionary,
}

#[repr(C)]
struct Object {
    magic: u64,
    refs: AtomicIsize,
    immortal: bool,
    kind: Kind,
}

static LIVE: AtomicIsize = AtomicIsize::new(0);

static TRUE: Object = Object {
    magic: MAGIC,
    refs: AtomicIsize::new(1),
    immortal: true,
    kind: Kind::Boolean(true),
};
static FALSE: Object = Object {
    magic: MAGIC,
    refs: AtomicIsize::new(1),
    immortal: true,
    kind: Kind::Boolean(false),
};

fn object<'a>(r: CFTypeRef) -> Option<&'a Object> {
    if r.is_null() {
        return None;
    }
    // SAFETY: every non-null CFTypeRef the plug-in sees in a Linux build comes from this module
    // (tests create them here), and boxes are only freed when their count reaches zero; the magic
    // check catches gross misuse.
    let o = unsafe { &*(r as *const Object) };
    assert_eq!(o.magic, MAGIC, "fake CF: not a CF object: {r:p}");
    assert!(
        o.refs.load(Ordering::SeqCst) > 0,
        "fake CF: use after free: {r:p}"
    );
    Some(o)
}

/// Creates a +1 object of the given kind.
pub fn create(kind: Kind) -> CFTypeRef {
    LIVE.fetch_add(1, Ordering::SeqCst);
    Box::into_raw(Box::new(Object {
        magic: MAGIC,
        refs: AtomicIsize::new(1),
        immortal: false,
        kind,
    })) as CFTypeRef
}

/// +1 CFUUID.
pub fn uuid(bytes: [u8; 16]) -> CFTypeRef {
    create(Kind::Uuid(bytes))
}

/// +1 CFNumber.
pub fn number(v: i64) -> CFTypeRef {
    create(Kind::Number(v))
}

/// The kind (contents) of a live object.
pub fn kind(r: CFTypeRef) -> Option<Kind> {
    object(r).map(|o| o.kind.clone())
}

/// The contents of a CFString.
pub fn string_value(r: CFTypeRef) -> Option<String> {
    match kind(r)? {
        Kind::String(s) => Some(s),
        _ => None,
    }
}

/// The reference count of a live object (immortals report 1).
pub fn ref_count(r: CFTypeRef) -> isize {
    object(r).map_or(0, |o| o.refs.load(Ordering::SeqCst))
}

/// Objects created and not yet freed (immortals excluded).
pub fn live_objects() -> isize {
    LIVE.load(Ordering::SeqCst)
}

pub struct FakeCf;

impl CoreFoundation for FakeCf {
    fn string(s: &str) -> CFTypeRef {
        create(Kind::String(s.to_owned()))
    }
    unsafe fn retain(r: CFTypeRef) -> CFTypeRef {
        if let Some(o) = object(r) {
            if !o.immortal {
                o.refs.fetch_add(1, Ordering::SeqCst);
            }
        }
        r
    }
    unsafe fn release(r: CFTypeRef) {
        if let Some(o) = object(r) {
            if o.immortal {
                return;
            }
            if o.refs.fetch_sub(1, Ordering::SeqCst) == 1 {
                LIVE.fetch_sub(1, Ordering::SeqCst);
                // SAFETY: the count just reached zero, so this was the last reference; the box was
                // created by `create` with Box::into_raw.
                drop(unsafe { Box::from_raw(r as *mut Object) });
            }
        }
    }
    unsafe fn equal(a: CFTypeRef, b: CFTypeRef) -> bool {
        match (object(a), object(b)) {
            (Some(x), Some(y)) => x.kind == y.kind,
            _ => false,
        }
    }
    unsafe fn uuid_bytes(r: CFTypeRef) -> Option<[u8; 16]> {
        match kind(r)? {
            Kind::Uuid(b) => Some(b),
            _ => None,
        }
    }
    fn boolean(v: bool) -> CFTypeRef {
        (if v { &TRUE } else { &FALSE }) as *const Object as CFTypeRef
    }
    unsafe fn plist_as_bool(r: CFTypeRef) -> Option<bool> {
        match kind(r)? {
            Kind::Boolean(b) => Some(b),
            Kind::Number(n) => Some(n != 0),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SAFETY (all calls below): the references come from this module and are live.

    #[test]
    fn retain_release_counts_references() {
        let s = FakeCf::string("x");
        assert_eq!(ref_count(s), 1);
        unsafe { FakeCf::retain(s) };
        assert_eq!(ref_count(s), 2);
        unsafe { FakeCf::release(s) };
        assert_eq!(string_value(s).as_deref(), Some("x"));
        unsafe { FakeCf::release(s) };
        // (freed: the global live count is checked by the serialized simulated-coreaudiod tests)
    }

    #[test]
    fn booleans_and_numbers_read_as_bool() {
        assert_eq!(
            unsafe { FakeCf::plist_as_bool(FakeCf::boolean(true)) },
            Some(true)
        );
        assert_eq!(
            unsafe { FakeCf::plist_as_bool(FakeCf::boolean(false)) },
            Some(false)
        );
        let n = number(0);
        assert_eq!(unsafe { FakeCf::plist_as_bool(n) }, Some(false));
        unsafe { FakeCf::release(n) };
        let s = FakeCf::string("true");
        assert_eq!(unsafe { FakeCf::plist_as_bool(s) }, None);
        unsafe { FakeCf::release(s) };
    }
}
