//! The libSystem the loaded plug-in binds to, with macOS layouts and numbering:
//! - `pthread_mutex_t` is 64 bytes (`long __sig; char __opaque[56]`), statically initialised with
//!   signature 0x32AAABA7 (`PTHREAD_MUTEX_INITIALIZER`) and set to 0x4D555458 by
//!   `pthread_mutex_init`; `pthread_cond_t` is 48 bytes (0x3CB0B1BB / 0x434F4E44). glibc's 40-byte
//!   mutex would read a macOS initialiser as garbage, so the lock state here lives in the opaque
//!   bytes (a parking_lot lock and condition variable), and a bad signature aborts the test.
//! - errno values are macOS's (ETIMEDOUT 60, EAGAIN 35, ...), written to a per-thread `int` that
//!   `___error` returns.
//! - clock ids are macOS's (CLOCK_UPTIME_RAW = 8, CLOCK_MONOTONIC = 6, ...), mapped to the Linux
//!   clock with the same meaning.
//! - `mach_absolute_time` reads a settable clock ([`set_mach_time`]), `mach_timebase_info`
//!   reports a settable ratio ([`set_timebase`]): the simulated coreaudiod moves time by hand.

// Each function's safety contract is its libSystem namesake's (valid pointers of the documented
// types and sizes).
#![allow(clippy::missing_safety_doc)]

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::lock_api::RawMutex as _;
use parking_lot::{Condvar, Mutex, RawMutex};

use super::{fatal, hit, S};

// ---- errno -------------------------------------------------------------------------------------

thread_local! {
    static ERRNO: Cell<c_int> = const { Cell::new(0) };
}

pub mod errno {
    //! macOS errno values (sys/errno.h) the shim returns.
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EINTR: i32 = 4;
    pub const EIO: i32 = 5;
    pub const EBADF: i32 = 9;
    pub const EDEADLK: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EFAULT: i32 = 14;
    pub const EBUSY: i32 = 16;
    pub const EINVAL: i32 = 22;
    pub const EPIPE: i32 = 32;
    pub const EAGAIN: i32 = 35;
    pub const ENOTSUP: i32 = 45;
    pub const ETIMEDOUT: i32 = 60;
    pub const ENOSYS: i32 = 78;
}

/// A Linux errno as macOS numbers it (the values that differ; the classic 1..=34 agree except
/// EDEADLK, which is 35 on Linux and 11 on macOS, where 35 is EAGAIN).
pub fn mac_errno(linux: i32) -> i32 {
    match linux {
        libc::EAGAIN => errno::EAGAIN,
        libc::EDEADLK => errno::EDEADLK,
        libc::ETIMEDOUT => errno::ETIMEDOUT,
        libc::ENOSYS => errno::ENOSYS,
        libc::EOPNOTSUPP => errno::ENOTSUP,
        e if (1..=34).contains(&e) => e,
        _ => errno::EIO,
    }
}

fn set_errno(mac: i32) {
    ERRNO.with(|e| e.set(mac));
}

fn set_errno_from_linux() {
    set_errno(mac_errno(
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    ));
}

/// `int *__error(void)`: this thread's errno.
pub extern "C" fn error_location() -> *mut c_int {
    hit(S::error);
    ERRNO.with(Cell::as_ptr)
}

/// The errno this thread's shim calls last set (macOS numbering).
pub fn last_errno() -> i32 {
    ERRNO.with(Cell::get)
}

// ---- stack protector, chkstk, fatal ------------------------------------------------------------

pub static STACK_CHK_GUARD: u64 = 0x00e5_a1d3_7c0f_fee0;

pub extern "C" fn stack_chk_fail() -> ! {
    hit(S::stack_chk_fail);
    fatal("__stack_chk_fail: the plug-in's stack protector fired")
}

pub extern "C" fn abort() -> ! {
    hit(S::abort);
    fatal("the plug-in called abort()")
}

pub extern "C" fn dyld_stub_binder() -> ! {
    hit(S::dyld_stub_binder);
    fatal("dyld_stub_binder called: a lazy binding was not bound at load")
}

extern "C" {
    fn hardmute_macho_chkstk_darwin();
}

pub fn chkstk_darwin_addr() -> usize {
    hardmute_macho_chkstk_darwin as *const () as usize
}

// `___chkstk_darwin`: called with the frame size in rax before a function moves rsp down by
// more than a page; touches each page from the caller's stack pointer down, lowest last, and
// preserves every register (Apple's contract).
std::arch::global_asm!(
    ".pushsection .text.hardmute_macho_chkstk_darwin,\"ax\",@progbits",
    ".globl hardmute_macho_chkstk_darwin",
    ".p2align 4",
    "hardmute_macho_chkstk_darwin:",
    "push rcx",
    "push rax",
    "lea rcx, [rsp + 24]",
    "2:",
    "cmp rax, 4096",
    "jb 3f",
    "sub rcx, 4096",
    "test qword ptr [rcx], rcx",
    "sub rax, 4096",
    "jmp 2b",
    "3:",
    "sub rcx, rax",
    "test qword ptr [rcx], rcx",
    "pop rax",
    "pop rcx",
    "ret",
    ".popsection",
);

// ---- memory ------------------------------------------------------------------------------------

pub extern "C" fn malloc(n: usize) -> *mut c_void {
    hit(S::malloc);
    // SAFETY: plain libc allocation.
    unsafe { libc::malloc(n) }
}
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    hit(S::calloc);
    // SAFETY: plain libc allocation.
    unsafe { libc::calloc(n, size) }
}
pub unsafe extern "C" fn realloc(p: *mut c_void, n: usize) -> *mut c_void {
    hit(S::realloc);
    // SAFETY: `p` came from this shim's malloc family (the image has no other allocator).
    unsafe { libc::realloc(p, n) }
}
pub unsafe extern "C" fn free(p: *mut c_void) {
    hit(S::free);
    // SAFETY: as for realloc.
    unsafe { libc::free(p) }
}
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, n: usize) -> c_int {
    hit(S::posix_memalign);
    // SAFETY: `out` is a valid out-pointer (caller contract).
    let rc = unsafe { libc::posix_memalign(out, align, n) };
    if rc == 0 {
        0
    } else {
        mac_errno(rc)
    }
}
pub unsafe extern "C" fn malloc_size(p: *const c_void) -> usize {
    hit(S::malloc_size);
    // SAFETY: `p` came from this shim's malloc family.
    unsafe { libc::malloc_usable_size(p as *mut c_void) }
}
pub unsafe extern "C" fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    hit(S::memcpy);
    // SAFETY: caller contract of memcpy.
    unsafe { libc::memcpy(d, s, n) }
}
pub unsafe extern "C" fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    hit(S::memmove);
    // SAFETY: caller contract of memmove.
    unsafe { libc::memmove(d, s, n) }
}
pub unsafe extern "C" fn memset(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    hit(S::memset);
    // SAFETY: caller contract of memset.
    unsafe { libc::memset(d, c, n) }
}
pub unsafe extern "C" fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
    hit(S::memcmp);
    // SAFETY: caller contract of memcmp.
    unsafe { libc::memcmp(a, b, n) }
}
pub unsafe extern "C" fn bzero(d: *mut c_void, n: usize) {
    hit(S::bzero);
    // SAFETY: caller contract of bzero.
    unsafe { libc::memset(d, 0, n) };
}
pub unsafe extern "C" fn memset_pattern16(d: *mut c_void, pattern: *const c_void, n: usize) {
    hit(S::memset_pattern16);
    // SAFETY: `d` has `n` writable bytes and `pattern` 16 readable ones (caller contract).
    unsafe {
        let p = std::slice::from_raw_parts(pattern.cast::<u8>(), 16);
        let d = std::slice::from_raw_parts_mut(d.cast::<u8>(), n);
        for (i, b) in d.iter_mut().enumerate() {
            *b = p[i % 16];
        }
    }
}
pub unsafe extern "C" fn strlen(s: *const std::ffi::c_char) -> usize {
    hit(S::strlen);
    // SAFETY: caller contract of strlen.
    unsafe { libc::strlen(s) }
}

// ---- pthread mutexes in macOS layout -----------------------------------------------------------

pub const MUTEX_SIG_INIT: i64 = 0x32AA_ABA7;
pub const MUTEX_SIG: i64 = 0x4D55_5458;
pub const MUTEX_ATTR_SIG: i64 = 0x4D54_5841;
pub const COND_SIG_INIT: i64 = 0x3CB0_B1BB;
pub const COND_SIG: i64 = 0x434F_4E44;
/// PTHREAD_MUTEX_NORMAL / ERRORCHECK / RECURSIVE (DEFAULT = NORMAL).
const MUTEX_NORMAL: c_int = 0;
const MUTEX_ERRORCHECK: c_int = 1;
const MUTEX_RECURSIVE: c_int = 2;

/// macOS `pthread_mutex_t`.
#[repr(C)]
pub struct MacMutex {
    pub sig: i64,
    /// opaque[0]: the lock (a parking_lot RawMutex, one byte); opaque[8..12]: the type.
    pub opaque: [u8; 56],
}
/// macOS `pthread_mutexattr_t`.
#[repr(C)]
pub struct MacMutexAttr {
    pub sig: i64,
    pub opaque: [u8; 8],
}
/// macOS `pthread_cond_t`.
#[repr(C)]
pub struct MacCond {
    pub sig: i64,
    /// opaque[0..8]: a parking_lot Condvar (one pointer, all-zero when new).
    pub opaque: [u8; 40],
}
const _: () = {
    assert!(std::mem::size_of::<MacMutex>() == 64);
    assert!(std::mem::size_of::<MacMutexAttr>() == 16);
    assert!(std::mem::size_of::<MacCond>() == 48);
    assert!(std::mem::size_of::<RawMutex>() == 1);
    assert!(std::mem::size_of::<Mutex<()>>() == 1);
    assert!(std::mem::size_of::<Condvar>() == 8);
    assert!(std::mem::align_of::<Condvar>() <= 8);
};

/// The lock inside a mutex whose signature was checked.
fn mutex_lock_of<'a>(m: *mut MacMutex, who: &str) -> &'a Mutex<()> {
    // SAFETY: the image passes a pointer to its 64-byte pthread_mutex_t.
    let sig = unsafe { (*m).sig };
    match sig {
        MUTEX_SIG => {}
        MUTEX_SIG_INIT => {
            // Statically initialised: all-zero opaque bytes are an unlocked NORMAL mutex.
            // SAFETY: as above; the first use turns the static initialiser into an initialised
            // mutex, as libpthread does.
            unsafe { (*m).sig = MUTEX_SIG };
        }
        other => fatal(&format!(
            "{who} on a pthread_mutex_t with signature {other:#x} (not initialised)"
        )),
    }
    // SAFETY: `Mutex<()>` is one byte (asserted) at the start of the opaque area, which only
    // this shim touches; the mutex does not move while in use (a pthread rule).
    unsafe { &*((*m).opaque.as_ptr().cast::<Mutex<()>>()) }
}

fn mutex_type(m: *mut MacMutex) -> c_int {
    // SAFETY: opaque[8..12] holds the type written at init (zero = NORMAL).
    unsafe { (*m).opaque.as_ptr().add(8).cast::<c_int>().read_unaligned() }
}

pub unsafe extern "C" fn pthread_mutexattr_init(a: *mut MacMutexAttr) -> c_int {
    hit(S::pthread_mutexattr_init);
    // SAFETY: the image passes its 16-byte pthread_mutexattr_t.
    unsafe {
        (*a).sig = MUTEX_ATTR_SIG;
        (*a).opaque = [0; 8];
    }
    0
}
pub unsafe extern "C" fn pthread_mutexattr_settype(a: *mut MacMutexAttr, kind: c_int) -> c_int {
    hit(S::pthread_mutexattr_settype);
    // SAFETY: as above.
    unsafe {
        if (*a).sig != MUTEX_ATTR_SIG {
            return errno::EINVAL;
        }
        if !(MUTEX_NORMAL..=MUTEX_RECURSIVE).contains(&kind) {
            return errno::EINVAL;
        }
        (&mut (*a).opaque)[..4].copy_from_slice(&kind.to_ne_bytes());
    }
    0
}
pub unsafe extern "C" fn pthread_mutexattr_destroy(a: *mut MacMutexAttr) -> c_int {
    hit(S::pthread_mutexattr_destroy);
    // SAFETY: as above.
    unsafe { (*a).sig = 0 };
    0
}
pub unsafe extern "C" fn pthread_mutex_init(m: *mut MacMutex, a: *const MacMutexAttr) -> c_int {
    hit(S::pthread_mutex_init);
    let kind = if a.is_null() {
        MUTEX_NORMAL
    } else {
        // SAFETY: a non-null attr points at an initialised pthread_mutexattr_t.
        unsafe {
            if (*a).sig != MUTEX_ATTR_SIG {
                return errno::EINVAL;
            }
            c_int::from_ne_bytes((&(*a).opaque)[..4].try_into().expect("4 bytes"))
        }
    };
    if kind == MUTEX_RECURSIVE {
        fatal("pthread_mutex_init(PTHREAD_MUTEX_RECURSIVE): not implemented by the shim");
    }
    // SAFETY: the image passes its 64-byte pthread_mutex_t, not in use.
    unsafe {
        (*m).opaque = [0; 56];
        (&mut (*m).opaque)[8..12].copy_from_slice(&kind.to_ne_bytes());
        (*m).sig = MUTEX_SIG;
    }
    0
}
pub unsafe extern "C" fn pthread_mutex_lock(m: *mut MacMutex) -> c_int {
    hit(S::pthread_mutex_lock);
    let lock = mutex_lock_of(m, "pthread_mutex_lock");
    if mutex_type(m) == MUTEX_ERRORCHECK && lock.is_locked() {
        // Without an owner record this cannot tell "mine" from "another thread's"; an
        // error-checking mutex is not what std or parking_lot create, so say so loudly.
        fatal("pthread_mutex_lock on a held PTHREAD_MUTEX_ERRORCHECK mutex");
    }
    // SAFETY: raw lock; the matching unlock is pthread_mutex_unlock.
    unsafe { lock.raw() }.lock();
    0
}
pub unsafe extern "C" fn pthread_mutex_trylock(m: *mut MacMutex) -> c_int {
    hit(S::pthread_mutex_trylock);
    let lock = mutex_lock_of(m, "pthread_mutex_trylock");
    // SAFETY: as above.
    if unsafe { lock.raw() }.try_lock() {
        0
    } else {
        errno::EBUSY
    }
}
pub unsafe extern "C" fn pthread_mutex_unlock(m: *mut MacMutex) -> c_int {
    hit(S::pthread_mutex_unlock);
    let lock = mutex_lock_of(m, "pthread_mutex_unlock");
    if !lock.is_locked() {
        fatal("pthread_mutex_unlock of an unlocked mutex");
    }
    // SAFETY: the caller holds the lock (pthread contract; checked above that it is held).
    unsafe { lock.force_unlock() };
    0
}
pub unsafe extern "C" fn pthread_mutex_destroy(m: *mut MacMutex) -> c_int {
    hit(S::pthread_mutex_destroy);
    let lock = mutex_lock_of(m, "pthread_mutex_destroy");
    if lock.is_locked() {
        return errno::EBUSY;
    }
    // SAFETY: as above.
    unsafe { (*m).sig = 0 };
    0
}

// ---- condition variables -----------------------------------------------------------------------

fn cond_of<'a>(c: *mut MacCond, who: &str) -> &'a Condvar {
    // SAFETY: the image passes its 48-byte pthread_cond_t.
    let sig = unsafe { (*c).sig };
    match sig {
        COND_SIG => {}
        // SAFETY: as above; a static initialiser becomes an initialised condition on first use.
        COND_SIG_INIT => unsafe { (*c).sig = COND_SIG },
        other => fatal(&format!(
            "{who} on a pthread_cond_t with signature {other:#x}"
        )),
    }
    // SAFETY: the opaque area is 8-aligned (after the i64 signature) and holds a Condvar (8
    // bytes, all-zero = new) that only this shim touches.
    unsafe { &*((*c).opaque.as_ptr().cast::<Condvar>()) }
}

pub unsafe extern "C" fn pthread_cond_init(c: *mut MacCond, _attr: *const c_void) -> c_int {
    hit(S::pthread_cond_init);
    // SAFETY: the image passes its pthread_cond_t, not in use.
    unsafe {
        (*c).opaque = [0; 40];
        (*c).sig = COND_SIG;
    }
    0
}

/// Waits on `c` with `m` held, until notified or `deadline`; returns 0 or macOS ETIMEDOUT.
fn cond_wait(c: *mut MacCond, m: *mut MacMutex, deadline: Option<Instant>, who: &str) -> c_int {
    let cond = cond_of(c, who);
    let lock = mutex_lock_of(m, who);
    if !lock.is_locked() {
        fatal(&format!("{who} without holding the mutex"));
    }
    // SAFETY: the caller holds the mutex (pthread contract, checked above); the guard stands for
    // that hold and is forgotten afterwards, so the caller still holds it on return.
    let mut guard = unsafe { lock.make_guard_unchecked() };
    let timed_out = match deadline {
        None => {
            cond.wait(&mut guard);
            false
        }
        Some(d) => cond.wait_until(&mut guard, d).timed_out(),
    };
    std::mem::forget(guard);
    if timed_out {
        errno::ETIMEDOUT
    } else {
        0
    }
}

/// macOS `struct timespec` (same layout as Linux x86_64's).
#[repr(C)]
pub struct MacTimespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}
const _: () = assert!(std::mem::size_of::<MacTimespec>() == 16);

fn to_duration(t: &MacTimespec) -> Duration {
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

pub unsafe extern "C" fn pthread_cond_wait(c: *mut MacCond, m: *mut MacMutex) -> c_int {
    hit(S::pthread_cond_wait);
    cond_wait(c, m, None, "pthread_cond_wait")
}
pub unsafe extern "C" fn pthread_cond_timedwait(
    c: *mut MacCond,
    m: *mut MacMutex,
    abstime: *const MacTimespec,
) -> c_int {
    hit(S::pthread_cond_timedwait);
    // Absolute time on the realtime clock (macOS has no pthread_condattr_setclock).
    // SAFETY: `abstime` points at a timespec (caller contract).
    let abs = to_duration(unsafe { &*abstime });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let deadline = Instant::now() + abs.saturating_sub(now);
    cond_wait(c, m, Some(deadline), "pthread_cond_timedwait")
}
pub unsafe extern "C" fn pthread_cond_timedwait_relative_np(
    c: *mut MacCond,
    m: *mut MacMutex,
    rel: *const MacTimespec,
) -> c_int {
    hit(S::pthread_cond_timedwait_relative_np);
    // SAFETY: `rel` points at a timespec (caller contract).
    let rel = to_duration(unsafe { &*rel });
    cond_wait(
        c,
        m,
        Some(Instant::now() + rel),
        "pthread_cond_timedwait_relative_np",
    )
}
pub unsafe extern "C" fn pthread_cond_signal(c: *mut MacCond) -> c_int {
    hit(S::pthread_cond_signal);
    cond_of(c, "pthread_cond_signal").notify_one();
    0
}
pub unsafe extern "C" fn pthread_cond_broadcast(c: *mut MacCond) -> c_int {
    hit(S::pthread_cond_broadcast);
    cond_of(c, "pthread_cond_broadcast").notify_all();
    0
}
pub unsafe extern "C" fn pthread_cond_destroy(c: *mut MacCond) -> c_int {
    hit(S::pthread_cond_destroy);
    cond_of(c, "pthread_cond_destroy");
    // SAFETY: as above.
    unsafe { (*c).sig = 0 };
    0
}

// ---- os_unfair_lock (a u32, zero = unlocked) ----------------------------------------------------

fn unfair_of<'a>(l: *mut u32) -> &'a RawMutex {
    // SAFETY: os_unfair_lock is a 4-byte, 4-aligned u32 owned by the image; the one-byte
    // RawMutex lives in its first byte (zero = unlocked), touched only by this shim.
    unsafe { &*(l.cast::<RawMutex>()) }
}
pub unsafe extern "C" fn os_unfair_lock_lock(l: *mut u32) {
    hit(S::os_unfair_lock_lock);
    unfair_of(l).lock();
}
pub unsafe extern "C" fn os_unfair_lock_trylock(l: *mut u32) -> bool {
    hit(S::os_unfair_lock_trylock);
    unfair_of(l).try_lock()
}
pub unsafe extern "C" fn os_unfair_lock_unlock(l: *mut u32) {
    hit(S::os_unfair_lock_unlock);
    let raw = unfair_of(l);
    if !raw.is_locked() {
        fatal("os_unfair_lock_unlock of an unlocked lock");
    }
    // SAFETY: the caller holds the lock (os_unfair_lock contract, checked above).
    unsafe { raw.unlock() };
}

// ---- dispatch semaphores -----------------------------------------------------------------------

const SEM_MAGIC: u64 = 0x4853_454d_4150_4844; // "HDPAMESH"

struct Semaphore {
    magic: u64,
    count: Mutex<i64>,
    cv: Condvar,
}

/// `dispatch_time_t` here: nanoseconds of the host's monotonic clock since the shim started;
/// DISPATCH_TIME_NOW = 0, DISPATCH_TIME_FOREVER = !0.
const DISPATCH_TIME_FOREVER: u64 = !0;

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn sem_of<'a>(s: *mut c_void) -> &'a Semaphore {
    // SAFETY: the image passes what dispatch_semaphore_create returned (a leaked box); the
    // magic check catches anything else.
    let sem = unsafe { &*(s.cast::<Semaphore>()) };
    if sem.magic != SEM_MAGIC {
        fatal("a dispatch object that this shim did not create");
    }
    sem
}

pub extern "C" fn dispatch_semaphore_create(value: isize) -> *mut c_void {
    hit(S::dispatch_semaphore_create);
    if value < 0 {
        return std::ptr::null_mut();
    }
    super::note_alloc();
    Box::into_raw(Box::new(Semaphore {
        magic: SEM_MAGIC,
        count: Mutex::new(value as i64),
        cv: Condvar::new(),
    }))
    .cast()
}
pub unsafe extern "C" fn dispatch_semaphore_wait(s: *mut c_void, timeout: u64) -> isize {
    hit(S::dispatch_semaphore_wait);
    let sem = sem_of(s);
    let deadline =
        (timeout != DISPATCH_TIME_FOREVER).then(|| epoch() + Duration::from_nanos(timeout));
    let mut count = sem.count.lock();
    while *count <= 0 {
        match deadline {
            None => sem.cv.wait(&mut count),
            Some(d) => {
                if sem.cv.wait_until(&mut count, d).timed_out() && *count <= 0 {
                    return 1; // non-zero: timed out
                }
            }
        }
    }
    *count -= 1;
    0
}
pub unsafe extern "C" fn dispatch_semaphore_signal(s: *mut c_void) -> isize {
    hit(S::dispatch_semaphore_signal);
    let sem = sem_of(s);
    *sem.count.lock() += 1;
    isize::from(sem.cv.notify_one())
}
pub unsafe extern "C" fn dispatch_release(s: *mut c_void) {
    hit(S::dispatch_release);
    let sem = sem_of(s);
    // The semaphore is freed by its last release; objects here are single-owner (std's parker
    // releases once when its thread's data is destroyed).
    let _ = sem;
    // SAFETY: created by Box::into_raw in dispatch_semaphore_create; this is its one release.
    drop(unsafe { Box::from_raw(s.cast::<Semaphore>()) });
}
pub extern "C" fn dispatch_time(when: u64, delta: i64) -> u64 {
    hit(S::dispatch_time);
    if when == DISPATCH_TIME_FOREVER {
        return DISPATCH_TIME_FOREVER;
    }
    let base = if when == 0 {
        epoch().elapsed().as_nanos() as u64
    } else {
        when
    };
    base.saturating_add_signed(delta)
        .min(DISPATCH_TIME_FOREVER - 1)
}

pub extern "C" fn pthread_self() -> usize {
    hit(S::pthread_self);
    // SAFETY: no preconditions.
    unsafe { libc::pthread_self() as usize }
}

/// `int pthread_threadid_np(pthread_t, uint64_t *)`: the calling thread's id (only `NULL` =
/// the caller is supported, which is how std and parking_lot ask).
pub unsafe extern "C" fn pthread_threadid_np(thread: usize, out: *mut u64) -> c_int {
    hit(S::pthread_threadid_np);
    if thread != 0 {
        fatal("pthread_threadid_np for another thread: not implemented by the shim");
    }
    // SAFETY: gettid has no preconditions; `out` is a valid out-pointer (caller contract).
    unsafe { out.write(libc::gettid() as u64) };
    0
}

/// The host's environment (read-only; std reads RUST_BACKTRACE when printing a panic).
pub unsafe extern "C" fn getenv(name: *const std::ffi::c_char) -> *mut std::ffi::c_char {
    hit(S::getenv);
    // SAFETY: `name` is a C string (caller contract); nothing here sets the environment.
    unsafe { libc::getenv(name) }
}

/// `strerror_r` for macOS errno values: writes "macOS errno N" (the text is only shown in
/// messages; the number is what matters).
pub unsafe extern "C" fn strerror_r(
    errnum: c_int,
    buf: *mut std::ffi::c_char,
    len: usize,
) -> c_int {
    hit(S::strerror_r);
    let text = format!("macOS errno {errnum}\0");
    if len < text.len() {
        return errno::EINVAL; // ERANGE's neighbour; callers retry with more room
    }
    // SAFETY: `buf` holds `len` bytes (caller contract), enough for `text` (checked).
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len()) };
    0
}

/// macOS `struct timeval` (tv_usec is an `int` there, padded to the same 16 bytes).
#[repr(C)]
pub struct MacTimeval {
    pub tv_sec: i64,
    pub tv_usec: i32,
}
const _: () = assert!(std::mem::size_of::<MacTimeval>() == 16);

pub unsafe extern "C" fn gettimeofday(tv: *mut MacTimeval, _tz: *mut c_void) -> c_int {
    hit(S::gettimeofday);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if !tv.is_null() {
        // SAFETY: valid out-pointer (caller contract).
        unsafe {
            (*tv).tv_sec = now.as_secs() as i64;
            (*tv).tv_usec = now.subsec_micros() as i32;
        }
    }
    0
}

/// `writev`: `struct iovec` is `{ void *, size_t }` on both systems.
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize {
    hit(S::writev);
    // SAFETY: caller contract of writev (`n` iovecs of readable memory).
    let r = unsafe { libc::writev(fd, iov, n) };
    if r < 0 {
        set_errno_from_linux();
    }
    r
}

// ---- the Mach clock ----------------------------------------------------------------------------

static MACH_NOW: AtomicU64 = AtomicU64::new(1_000_000);
/// 125/3: 24 MHz ticks, Apple silicon's timebase.
static TIMEBASE_NUMER: AtomicU32 = AtomicU32::new(125);
static TIMEBASE_DENOM: AtomicU32 = AtomicU32::new(3);

/// Sets what `mach_absolute_time` returns.
pub fn set_mach_time(t: u64) {
    MACH_NOW.store(t, Ordering::SeqCst);
}
pub fn advance_mach_time(ticks: u64) {
    MACH_NOW.fetch_add(ticks, Ordering::SeqCst);
}
pub fn mach_time() -> u64 {
    MACH_NOW.load(Ordering::SeqCst)
}
/// Sets what `mach_timebase_info` reports (ticks x numer / denom = nanoseconds).
pub fn set_timebase(numer: u32, denom: u32) {
    TIMEBASE_NUMER.store(numer, Ordering::SeqCst);
    TIMEBASE_DENOM.store(denom, Ordering::SeqCst);
}

pub extern "C" fn mach_absolute_time() -> u64 {
    hit(S::mach_absolute_time);
    MACH_NOW.load(Ordering::SeqCst)
}

#[repr(C)]
pub struct MachTimebaseInfo {
    pub numer: u32,
    pub denom: u32,
}

pub unsafe extern "C" fn mach_timebase_info(info: *mut MachTimebaseInfo) -> c_int {
    hit(S::mach_timebase_info);
    // SAFETY: valid out-pointer (caller contract).
    unsafe {
        (*info).numer = TIMEBASE_NUMER.load(Ordering::SeqCst);
        (*info).denom = TIMEBASE_DENOM.load(Ordering::SeqCst);
    }
    0 // KERN_SUCCESS
}

/// A macOS clock id (time.h) as the Linux clock with the same meaning.
pub fn linux_clock(mac: c_int) -> Option<libc::clockid_t> {
    Some(match mac {
        0 => libc::CLOCK_REALTIME,
        4 | 5 => libc::CLOCK_MONOTONIC_RAW, // CLOCK_MONOTONIC_RAW(_APPROX)
        6 => libc::CLOCK_BOOTTIME,          // CLOCK_MONOTONIC: counts sleep on macOS
        7 | 8 => libc::CLOCK_MONOTONIC,     // CLOCK_UPTIME_RAW(_APPROX): stops in sleep
        12 => libc::CLOCK_PROCESS_CPUTIME_ID,
        16 => libc::CLOCK_THREAD_CPUTIME_ID,
        _ => return None,
    })
}

pub unsafe extern "C" fn clock_gettime(clock: c_int, out: *mut MacTimespec) -> c_int {
    hit(S::clock_gettime);
    let Some(id) = linux_clock(clock) else {
        set_errno(errno::EINVAL);
        return -1;
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer of our own.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        set_errno_from_linux();
        return -1;
    }
    // SAFETY: valid out-pointer (caller contract).
    unsafe {
        (*out).tv_sec = ts.tv_sec;
        (*out).tv_nsec = ts.tv_nsec;
    }
    0
}

// ---- kernel ------------------------------------------------------------------------------------

pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: usize) -> isize {
    hit(S::write);
    // SAFETY: caller contract of write.
    let r = unsafe { libc::write(fd, buf, n) };
    if r < 0 {
        set_errno_from_linux();
    }
    r
}
pub unsafe extern "C" fn nanosleep(req: *const MacTimespec, rem: *mut MacTimespec) -> c_int {
    hit(S::nanosleep);
    // SAFETY: same layout as Linux's timespec (asserted size; both are two i64s).
    let r = unsafe { libc::nanosleep(req.cast(), rem.cast()) };
    if r != 0 {
        set_errno_from_linux();
    }
    r
}
pub extern "C" fn sched_yield() -> c_int {
    hit(S::sched_yield);
    // SAFETY: no preconditions.
    unsafe { libc::sched_yield() }
}
pub extern "C" fn sysconf(name: c_int) -> libc::c_long {
    hit(S::sysconf);
    // macOS numbering (unistd.h): _SC_PAGESIZE 29, _SC_NPROCESSORS_CONF 57, _ONLN 58.
    let linux = match name {
        29 => libc::_SC_PAGESIZE,
        57 => libc::_SC_NPROCESSORS_CONF,
        58 => libc::_SC_NPROCESSORS_ONLN,
        _ => {
            set_errno(errno::EINVAL);
            return -1;
        }
    };
    // SAFETY: no preconditions.
    unsafe { libc::sysconf(linux) }
}
pub extern "C" fn getpid() -> c_int {
    hit(S::getpid);
    std::process::id() as c_int
}

// ---- processes (libproc) -----------------------------------------------------------------------

static PROCESSES: Mutex<Vec<(c_int, u32)>> = Mutex::new(Vec::new());

/// Process `pid` runs as `uid` (real and effective) for `proc_pidinfo`.
pub fn set_process(pid: c_int, uid: u32) {
    let mut p = PROCESSES.lock();
    p.retain(|(q, _)| *q != pid);
    p.push((pid, uid));
}
/// `pid` no longer exists.
pub fn remove_process(pid: c_int) {
    PROCESSES.lock().retain(|(q, _)| *q != pid);
}

/// `PROC_PIDT_SHORTBSDINFO` (sys/proc_info.h).
pub const PROC_PIDT_SHORTBSDINFO: c_int = 13;
/// `sizeof(struct proc_bsdshortinfo)`; uid at 36, ruid at 44, svuid at 52.
pub const PROC_BSDSHORTINFO_SIZE: c_int = 64;

/// `int proc_pidinfo(int pid, int flavor, uint64_t arg, void *buffer, int size)`: only the
/// short BSD info, from the table [`set_process`] fills; returns the bytes written, or 0 with
/// errno ESRCH for an unknown pid (libproc's convention).
pub unsafe extern "C" fn proc_pidinfo(
    pid: c_int,
    flavor: c_int,
    _arg: u64,
    buf: *mut c_void,
    size: c_int,
) -> c_int {
    hit(S::proc_pidinfo);
    if flavor != PROC_PIDT_SHORTBSDINFO {
        fatal(&format!(
            "proc_pidinfo flavor {flavor}: not implemented by the shim"
        ));
    }
    if size < PROC_BSDSHORTINFO_SIZE || buf.is_null() {
        set_errno(errno::ENOMEM);
        return 0;
    }
    let Some(uid) = PROCESSES
        .lock()
        .iter()
        .find(|(p, _)| *p == pid)
        .map(|(_, u)| *u)
    else {
        set_errno(3); // ESRCH
        return 0;
    };
    let mut info = [0u32; 16];
    info[0] = pid as u32; // pbsi_pid
    info[9] = uid; // pbsi_uid (offset 36)
    info[11] = uid; // pbsi_ruid (offset 44)
    info[13] = uid; // pbsi_svuid (offset 52)
                    // SAFETY: `buf` holds `size` >= 64 writable bytes (checked; caller contract).
    unsafe { std::ptr::copy_nonoverlapping(info.as_ptr().cast::<u8>(), buf.cast::<u8>(), 64) };
    PROC_BSDSHORTINFO_SIZE
}

// ---- files: only those a test provides ---------------------------------------------------------

struct OpenFile {
    fd: c_int,
    data: Vec<u8>,
    pos: usize,
}

static FILES: Mutex<Vec<(String, Vec<u8>)>> = Mutex::new(Vec::new());
static OPEN: Mutex<Vec<OpenFile>> = Mutex::new(Vec::new());
static NEXT_FD: AtomicU32 = AtomicU32::new(0x4000);

/// Makes `path` readable by the image with `contents` (None: removes it). No other path exists
/// for the image: `open` of anything else fails with ENOENT.
pub fn set_file(path: &str, contents: Option<&[u8]>) {
    let mut f = FILES.lock();
    f.retain(|(p, _)| p != path);
    if let Some(c) = contents {
        f.push((path.to_owned(), c.to_vec()));
    }
}

/// `open(path, flags, ...)`: read-only opens of [`set_file`] files (macOS O_ACCMODE = 3).
pub unsafe extern "C" fn open(path: *const std::ffi::c_char, flags: c_int, _mode: c_int) -> c_int {
    hit(S::open);
    // SAFETY: `path` is a C string (caller contract).
    let path = unsafe { std::ffi::CStr::from_ptr(path) }.to_string_lossy();
    if flags & 3 != 0 {
        set_errno(errno::EPERM);
        return -1;
    }
    let Some(data) = FILES
        .lock()
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, d)| d.clone())
    else {
        set_errno(errno::ENOENT);
        return -1;
    };
    let fd = NEXT_FD.fetch_add(1, Ordering::SeqCst) as c_int;
    OPEN.lock().push(OpenFile { fd, data, pos: 0 });
    fd
}

fn with_open<R>(fd: c_int, f: impl FnOnce(&mut OpenFile) -> R) -> Option<R> {
    OPEN.lock().iter_mut().find(|o| o.fd == fd).map(f)
}

pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize {
    hit(S::read);
    with_open(fd, |o| {
        let chunk = &o.data[o.pos.min(o.data.len())..];
        let k = chunk.len().min(n);
        // SAFETY: `buf` holds `n` writable bytes (caller contract), k <= n.
        unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), buf.cast::<u8>(), k) };
        o.pos += k;
        k as isize
    })
    .unwrap_or_else(|| {
        set_errno(errno::EBADF);
        -1
    })
}

pub extern "C" fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64 {
    hit(S::lseek);
    with_open(fd, |o| {
        let base = match whence {
            0 => 0,
            1 => o.pos as i64,
            2 => o.data.len() as i64,
            _ => return None,
        };
        let at = base.checked_add(offset).filter(|a| *a >= 0)?;
        o.pos = at as usize;
        Some(at)
    })
    .flatten()
    .unwrap_or_else(|| {
        set_errno(errno::EINVAL);
        -1
    })
}

/// `fcntl(fd, cmd, ...)` on a shim file: F_GETFD (1) answers FD_CLOEXEC (every shim file is
/// opened close-on-exec), F_SETFD (2) and F_GETFL (3, O_RDONLY) succeed; any other command
/// aborts the test naming it. Other descriptors: EBADF. (Variadic in C; on x86_64 the third
/// argument arrives in the same register either way.)
pub extern "C" fn fcntl(fd: c_int, cmd: c_int, _arg: usize) -> c_int {
    hit(S::fcntl);
    if with_open(fd, |_| ()).is_none() {
        set_errno(errno::EBADF);
        return -1;
    }
    match cmd {
        1 => 1,
        2 | 3 => 0,
        other => fatal(&format!(
            "fcntl command {other}: not implemented by the shim"
        )),
    }
}

/// macOS `struct stat` (64-bit inodes, x86_64): 144 bytes, `st_mode` at 4, `st_size` at 96,
/// `st_blksize` at 112.
pub const MAC_STAT_SIZE: usize = 144;

pub unsafe extern "C" fn fstat(fd: c_int, st: *mut u8) -> c_int {
    hit(S::fstat);
    let Some(len) = with_open(fd, |o| o.data.len()) else {
        set_errno(errno::EBADF);
        return -1;
    };
    let mut b = [0u8; MAC_STAT_SIZE];
    b[4..6].copy_from_slice(&0o100_444u16.to_ne_bytes()); // S_IFREG | r--r--r--
    b[6..8].copy_from_slice(&1u16.to_ne_bytes()); // st_nlink
    b[96..104].copy_from_slice(&(len as i64).to_ne_bytes());
    b[112..116].copy_from_slice(&4096i32.to_ne_bytes());
    // SAFETY: `st` points at a macOS struct stat (caller contract).
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), st, MAC_STAT_SIZE) };
    0
}

/// `close` / `close$NOCANCEL` of a shim file (any other descriptor: EBADF, nothing closed).
pub extern "C" fn close(fd: c_int) -> c_int {
    hit(S::close);
    close_shim_fd(fd)
}
pub extern "C" fn close_nocancel(fd: c_int) -> c_int {
    hit(S::close_nocancel);
    close_shim_fd(fd)
}
fn close_shim_fd(fd: c_int) -> c_int {
    let mut open = OPEN.lock();
    match open.iter().position(|o| o.fd == fd) {
        Some(i) => {
            open.remove(i);
            0
        }
        None => {
            set_errno(errno::EBADF);
            -1
        }
    }
}
