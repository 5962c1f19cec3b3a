//! The CoreFoundation seam.
//!
//! The plug-in needs only a handful of CF operations (make a CFString once at start-up, retain /
//! release, compare, read a CFUUID's bytes, turn a boolean property list into a Rust bool). They sit
//! behind [`CoreFoundation`] so the whole plug-in model runs on Linux against [`fake`], a small
//! reference-counted imitation that also counts live objects (leak checks for the +1 references the
//! HAL expects from GetPropertyData). On Apple targets [`apple`] calls the real framework.
//!
//! None of these are called on the IO path.

use crate::abi::CFTypeRef;

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
pub mod apple;
#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub mod fake;

/// The operations the plug-in uses. All take/return raw CF references; ownership is documented per
/// method in CF terms (+1 = the caller owns a reference and must release it).
///
/// # Safety (every `unsafe fn` here)
/// Each reference passed in must be null or a live CF object of any type (the methods check the
/// type where it matters). The host's pointers (client bundle ids, property data, the factory's
/// UUID) carry that promise from coreaudiod; [`Owned`] keeps it for the plug-in's own objects.
pub trait CoreFoundation {
    /// +1 CFString with the given UTF-8 contents (null on failure).
    fn string(s: &str) -> CFTypeRef;
    /// +1 on `r` (null passes through); returns `r`.
    ///
    /// # Safety
    /// Every reference argument is null or a live CF object.
    unsafe fn retain(r: CFTypeRef) -> CFTypeRef;
    /// -1 on `r` (null ignored).
    ///
    /// # Safety
    /// Every reference argument is null or a live CF object.
    unsafe fn release(r: CFTypeRef);
    /// CFEqual (false if either is null).
    ///
    /// # Safety
    /// Every reference argument is null or a live CF object.
    unsafe fn equal(a: CFTypeRef, b: CFTypeRef) -> bool;
    /// The 16 bytes of a CFUUID, or None if `r` is null or not a CFUUID.
    ///
    /// # Safety
    /// Every reference argument is null or a live CF object.
    unsafe fn uuid_bytes(r: CFTypeRef) -> Option<[u8; 16]>;
    /// +1 kCFBooleanTrue / kCFBooleanFalse.
    fn boolean(v: bool) -> CFTypeRef;
    /// A property list read as a boolean: CFBoolean, or CFNumber (non-zero = true). None otherwise.
    ///
    /// # Safety
    /// Every reference argument is null or a live CF object.
    unsafe fn plist_as_bool(r: CFTypeRef) -> Option<bool>;
}

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
pub type Cf = apple::AppleCf;
#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub type Cf = fake::FakeCf;

/// An owned (+1) CF reference, released on drop. Used for the strings the plug-in keeps.
pub struct Owned(CFTypeRef);

// SAFETY: CF objects the plug-in keeps (immutable CFStrings, CFBooleans) are thread-safe to retain,
// release and read from any thread; CF documents immutable objects as safe to share.
unsafe impl Send for Owned {}
// SAFETY: as above; `Owned` offers only shared, read-only access.
unsafe impl Sync for Owned {}

impl Owned {
    pub fn string(s: &str) -> Self {
        Owned(Cf::string(s))
    }
    /// Takes over a +1 reference.
    ///
    /// # Safety
    /// `r` is null or a live CF object whose one reference the caller hands over.
    pub unsafe fn from_plus_one(r: CFTypeRef) -> Self {
        Owned(r)
    }
    /// Retains a borrowed reference.
    ///
    /// # Safety
    /// `r` is null or a live CF object.
    pub unsafe fn retain(r: CFTypeRef) -> Self {
        // SAFETY: caller contract.
        Owned(unsafe { Cf::retain(r) })
    }
    pub fn get(&self) -> CFTypeRef {
        self.0
    }
    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: `Owned` holds one reference to a live object (or null), given up here.
        unsafe { Cf::release(self.0) };
    }
}
