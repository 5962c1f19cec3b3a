//! Tagged non-paged allocations and a spin lock: the only two "runtime" services the glue
//! needs. Every object type has its own pool tag (visible in poolmon / !poolused).

use crate::ddk::extra::NON_PAGED_POOL_NX;
use crate::ddk::*;
use core::cell::UnsafeCell;
use core::ptr::null_mut;

/// A pool tag from four ASCII bytes, stored so that tools print them in this order.
pub const fn tag(b: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*b)
}
pub const TAG_WAVE_MINIPORT: u32 = tag(b"HMwm");
pub const TAG_WAVE_STREAM: u32 = tag(b"HMws");
pub const TAG_TOPOLOGY: u32 = tag(b"HMtp");
pub const TAG_BRIDGE: u32 = tag(b"HMbr");

/// Moves `value` into a new non-paged allocation; null if the pool is exhausted.
pub fn alloc<T>(value: T, tag: u32) -> *mut T {
    const {
        assert!(
            core::mem::align_of::<T>() <= 16,
            "pool allocations are 16-byte aligned"
        )
    };
    // SAFETY: plain pool allocation at <= DISPATCH_LEVEL.
    let p = unsafe {
        ExAllocatePoolWithTag(NON_PAGED_POOL_NX, core::mem::size_of::<T>() as SIZE_T, tag)
    }
    .cast::<T>();
    if p.is_null() {
        return null_mut();
    }
    // SAFETY: `p` is a fresh, suitably sized and aligned allocation.
    unsafe { p.write(value) };
    p
}

/// Drops and frees an object made by [`alloc`].
///
/// # Safety
/// `p` came from `alloc::<T>(_, tag)` and is not used afterwards.
pub unsafe fn free<T>(p: *mut T, tag: u32) {
    // SAFETY: per the contract.
    unsafe {
        core::ptr::drop_in_place(p);
        ExFreePoolWithTag(p.cast(), tag);
    }
}

/// A `KSPIN_LOCK`-protected value, for state shared between PASSIVE-level request paths.
/// Never taken by the timer callback (the audio path uses atomics only).
pub struct SpinLock<T> {
    lock: UnsafeCell<KSPIN_LOCK>,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by the kernel spin lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// `KeInitializeSpinLock` is `*lock = 0` on x64/arm64.
    pub const fn new(value: T) -> Self {
        SpinLock {
            lock: UnsafeCell::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` at DISPATCH_LEVEL holding the lock. `f` must not block or page-fault.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the lock word lives as long as `self`; acquire/release are paired below.
        let irql = unsafe { KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        // SAFETY: the lock is held, so this is the only reference.
        let r = f(unsafe { &mut *self.value.get() });
        // SAFETY: releases the lock taken above, restoring the caller's IRQL.
        unsafe { KeReleaseSpinLock(self.lock.get(), irql) };
        r
    }
}
