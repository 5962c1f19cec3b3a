//! What the loaded image's imports are bound to: a small libSystem ([`libsystem`]), os_log over
//! the plug-in's own os_log fake ([`oslog`]) and a CoreFoundation over the plug-in's own CF fake
//! ([`cf`]), every function call-counted, and a named trap for anything else.
//!
//! All shim functions are `extern "C"`: on x86_64 Linux that is the System V ABI, which is the
//! Mach-O x86_64 calling convention too (same argument registers, return registers, callee-saved
//! set, 16-byte stack alignment and red zone).

pub mod cf;
pub mod libsystem;
pub mod oslog;

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// What a shim function is, for the realtime-safety counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// malloc/free and friends (and the first thread-local access of a thread, which allocates).
    Alloc,
    /// pthread mutexes/conditions, os_unfair_lock, dispatch semaphores.
    Lock,
    /// Any CoreFoundation function.
    Cf,
    /// Anything that enters the kernel on macOS (write, nanosleep, clock_gettime's slow clocks,
    /// sysconf, ...).
    Syscall,
    /// mach_absolute_time / mach_timebase_info: the commpage, no kernel entry on macOS.
    Clock,
    /// memcpy and friends: plain computation.
    Memory,
    /// errno location, thread-local registration, stack guard: bookkeeping without side effects.
    Runtime,
    /// Process death (abort, stack check failure): the test aborts with the name.
    Fatal,
    /// os_log (creating a log object, asking whether a type is enabled, writing a record).
    Log,
}

/// Which library an import comes from (the two the plug-in may link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lib {
    System,
    CoreFoundation,
}

impl Lib {
    pub fn install_name(self) -> &'static str {
        match self {
            Lib::System => "/usr/lib/libSystem.B.dylib",
            Lib::CoreFoundation => {
                "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation"
            }
        }
    }
}

pub struct Entry {
    pub id: S,
    pub name: &'static str,
    pub lib: Lib,
    pub category: Category,
    pub addr: usize,
}

macro_rules! symbols {
    ($( $id:ident = $name:literal, $lib:ident, $cat:ident, $addr:expr; )*) => {
        /// One per shim symbol; indexes the call counters.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum S { $($id),* }
        /// Mach-O names (with the leading `_`), in [`S`] order.
        pub const NAMES: &[&str] = &[$($name),*];
        const CATEGORIES: &[Category] = &[$(Category::$cat),*];
        fn build_table() -> Vec<Entry> {
            vec![$( Entry {
                id: S::$id,
                name: $name,
                lib: Lib::$lib,
                category: Category::$cat,
                addr: $addr,
            } ),*]
        }
    };
}

use cf::*;
use libsystem::*;

symbols! {
    // ---- memory ----
    malloc = "_malloc", System, Alloc, malloc as *const () as usize;
    calloc = "_calloc", System, Alloc, calloc as *const () as usize;
    realloc = "_realloc", System, Alloc, realloc as *const () as usize;
    free = "_free", System, Alloc, free as *const () as usize;
    posix_memalign = "_posix_memalign", System, Alloc, posix_memalign as *const () as usize;
    malloc_size = "_malloc_size", System, Alloc, malloc_size as *const () as usize;
    memcpy = "_memcpy", System, Memory, memcpy as *const () as usize;
    memmove = "_memmove", System, Memory, memmove as *const () as usize;
    memset = "_memset", System, Memory, memset as *const () as usize;
    memcmp = "_memcmp", System, Memory, memcmp as *const () as usize;
    bcmp = "_bcmp", System, Memory, memcmp as *const () as usize;
    bzero = "_bzero", System, Memory, bzero as *const () as usize;
    memset_pattern16 = "_memset_pattern16", System, Memory, memset_pattern16 as *const () as usize;
    strlen = "_strlen", System, Memory, strlen as *const () as usize;
    // ---- runtime ----
    error = "___error", System, Runtime, error_location as *const () as usize;
    stack_chk_guard = "___stack_chk_guard", System, Runtime, std::ptr::addr_of!(STACK_CHK_GUARD) as usize;
    tlv_bootstrap = "__tlv_bootstrap", System, Runtime, crate::tlv::get_addr_thunk();
    tlv_atexit = "__tlv_atexit", System, Runtime, crate::tlv::tlv_atexit as *const () as usize;
    chkstk_darwin = "___chkstk_darwin", System, Runtime, chkstk_darwin_addr();
    // ---- fatal ----
    stack_chk_fail = "___stack_chk_fail", System, Fatal, stack_chk_fail as *const () as usize;
    abort = "_abort", System, Fatal, abort as *const () as usize;
    dyld_stub_binder = "dyld_stub_binder", System, Fatal, dyld_stub_binder as *const () as usize;
    // ---- locks ----
    pthread_mutex_init = "_pthread_mutex_init", System, Lock, pthread_mutex_init as *const () as usize;
    pthread_mutex_lock = "_pthread_mutex_lock", System, Lock, pthread_mutex_lock as *const () as usize;
    pthread_mutex_trylock = "_pthread_mutex_trylock", System, Lock, pthread_mutex_trylock as *const () as usize;
    pthread_mutex_unlock = "_pthread_mutex_unlock", System, Lock, pthread_mutex_unlock as *const () as usize;
    pthread_mutex_destroy = "_pthread_mutex_destroy", System, Lock, pthread_mutex_destroy as *const () as usize;
    pthread_mutexattr_init = "_pthread_mutexattr_init", System, Lock, pthread_mutexattr_init as *const () as usize;
    pthread_mutexattr_settype = "_pthread_mutexattr_settype", System, Lock, pthread_mutexattr_settype as *const () as usize;
    pthread_mutexattr_destroy = "_pthread_mutexattr_destroy", System, Lock, pthread_mutexattr_destroy as *const () as usize;
    pthread_cond_init = "_pthread_cond_init", System, Lock, pthread_cond_init as *const () as usize;
    pthread_cond_wait = "_pthread_cond_wait", System, Lock, pthread_cond_wait as *const () as usize;
    pthread_cond_timedwait = "_pthread_cond_timedwait", System, Lock, pthread_cond_timedwait as *const () as usize;
    pthread_cond_timedwait_relative_np = "_pthread_cond_timedwait_relative_np", System, Lock, pthread_cond_timedwait_relative_np as *const () as usize;
    pthread_cond_signal = "_pthread_cond_signal", System, Lock, pthread_cond_signal as *const () as usize;
    pthread_cond_broadcast = "_pthread_cond_broadcast", System, Lock, pthread_cond_broadcast as *const () as usize;
    pthread_cond_destroy = "_pthread_cond_destroy", System, Lock, pthread_cond_destroy as *const () as usize;
    os_unfair_lock_lock = "_os_unfair_lock_lock", System, Lock, os_unfair_lock_lock as *const () as usize;
    os_unfair_lock_trylock = "_os_unfair_lock_trylock", System, Lock, os_unfair_lock_trylock as *const () as usize;
    os_unfair_lock_unlock = "_os_unfair_lock_unlock", System, Lock, os_unfair_lock_unlock as *const () as usize;
    dispatch_semaphore_create = "_dispatch_semaphore_create", System, Lock, dispatch_semaphore_create as *const () as usize;
    dispatch_semaphore_wait = "_dispatch_semaphore_wait", System, Lock, dispatch_semaphore_wait as *const () as usize;
    dispatch_semaphore_signal = "_dispatch_semaphore_signal", System, Lock, dispatch_semaphore_signal as *const () as usize;
    dispatch_release = "_dispatch_release", System, Lock, dispatch_release as *const () as usize;
    dispatch_time = "_dispatch_time", System, Clock, dispatch_time as *const () as usize;
    // ---- threads ----
    pthread_self = "_pthread_self", System, Runtime, pthread_self as *const () as usize;
    pthread_threadid_np = "_pthread_threadid_np", System, Runtime, pthread_threadid_np as *const () as usize;
    getenv = "_getenv", System, Runtime, getenv as *const () as usize;
    strerror_r = "_strerror_r", System, Runtime, strerror_r as *const () as usize;
    gettimeofday = "_gettimeofday", System, Syscall, gettimeofday as *const () as usize;
    writev = "_writev", System, Syscall, writev as *const () as usize;
    // ---- clocks ----
    mach_absolute_time = "_mach_absolute_time", System, Clock, mach_absolute_time as *const () as usize;
    mach_timebase_info = "_mach_timebase_info", System, Clock, mach_timebase_info as *const () as usize;
    clock_gettime = "_clock_gettime", System, Syscall, clock_gettime as *const () as usize;
    // ---- kernel ----
    write = "_write", System, Syscall, write as *const () as usize;
    nanosleep = "_nanosleep", System, Syscall, nanosleep as *const () as usize;
    sched_yield = "_sched_yield", System, Syscall, sched_yield as *const () as usize;
    sysconf = "_sysconf", System, Syscall, sysconf as *const () as usize;
    getpid = "_getpid", System, Syscall, getpid as *const () as usize;
    proc_pidinfo = "_proc_pidinfo", System, Syscall, proc_pidinfo as *const () as usize;
    open = "_open", System, Syscall, open as *const () as usize;
    read = "_read", System, Syscall, read as *const () as usize;
    lseek = "_lseek", System, Syscall, lseek as *const () as usize;
    fstat = "_fstat$INODE64", System, Syscall, fstat as *const () as usize;
    fcntl = "_fcntl", System, Syscall, fcntl as *const () as usize;
    close = "_close", System, Syscall, close as *const () as usize;
    close_nocancel = "_close$NOCANCEL", System, Syscall, close_nocancel as *const () as usize;
    // ---- os_log ----
    os_log_create = "_os_log_create", System, Log, oslog::os_log_create as *const () as usize;
    os_log_type_enabled = "_os_log_type_enabled", System, Log, oslog::os_log_type_enabled as *const () as usize;
    os_log_impl = "__os_log_impl", System, Log, oslog::os_log_impl as *const () as usize;
    // ---- CoreFoundation ----
    kCFBooleanTrue = "_kCFBooleanTrue", CoreFoundation, Cf, std::ptr::addr_of!(K_CF_BOOLEAN_TRUE) as usize;
    kCFBooleanFalse = "_kCFBooleanFalse", CoreFoundation, Cf, std::ptr::addr_of!(K_CF_BOOLEAN_FALSE) as usize;
    CFRetain = "_CFRetain", CoreFoundation, Cf, CFRetain as *const () as usize;
    CFRelease = "_CFRelease", CoreFoundation, Cf, CFRelease as *const () as usize;
    CFEqual = "_CFEqual", CoreFoundation, Cf, CFEqual as *const () as usize;
    CFGetTypeID = "_CFGetTypeID", CoreFoundation, Cf, CFGetTypeID as *const () as usize;
    CFUUIDGetTypeID = "_CFUUIDGetTypeID", CoreFoundation, Cf, CFUUIDGetTypeID as *const () as usize;
    CFUUIDGetUUIDBytes = "_CFUUIDGetUUIDBytes", CoreFoundation, Cf, CFUUIDGetUUIDBytes as *const () as usize;
    CFBooleanGetTypeID = "_CFBooleanGetTypeID", CoreFoundation, Cf, CFBooleanGetTypeID as *const () as usize;
    CFBooleanGetValue = "_CFBooleanGetValue", CoreFoundation, Cf, CFBooleanGetValue as *const () as usize;
    CFNumberGetTypeID = "_CFNumberGetTypeID", CoreFoundation, Cf, CFNumberGetTypeID as *const () as usize;
    CFNumberGetValue = "_CFNumberGetValue", CoreFoundation, Cf, CFNumberGetValue as *const () as usize;
    CFStringCreateWithBytes = "_CFStringCreateWithBytes", CoreFoundation, Cf, CFStringCreateWithBytes as *const () as usize;
}

/// Imports of the shipped slice left as named traps: reached only while printing a panic's
/// backtrace (std's unwinder and symbolizer, which maps the image's file and walks directories;
/// `open`/`fstat`/`close` are shimmed over [`libsystem::set_file`]'s files, which the
/// symbolizer would not find). A panic in
/// the plug-in aborts coreaudiod's plug-in host either way, so imitating these proves nothing.
pub const PANIC_ONLY_IMPORTS: &[&str] = &[
    "__Unwind_Backtrace",
    "__Unwind_GetIP",
    "__dyld_get_image_header",
    "__dyld_get_image_name",
    "__dyld_get_image_vmaddr_slide",
    "__dyld_image_count",
    "_closedir",
    "_dirfd",
    "_getcwd",
    "_mmap",
    "_munmap",
    "_opendir$INODE64",
    "_readdir_r$INODE64",
];

const N: usize = NAMES.len();
static COUNTS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
/// Allocations made on the image's behalf outside `malloc` (thread-local blocks).
static EXTRA_ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Counts one call of a shim function.
#[inline]
pub fn hit(s: S) {
    COUNTS[s as usize].fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn note_alloc() {
    EXTRA_ALLOCS.fetch_add(1, Ordering::Relaxed);
}

pub fn table() -> &'static [Entry] {
    static TABLE: OnceLock<Vec<Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        cf::init();
        build_table()
    })
}

/// A snapshot of every counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    calls: [u64; N],
    extra_allocs: u64,
}

impl Counts {
    pub fn now() -> Counts {
        Counts {
            calls: std::array::from_fn(|i| COUNTS[i].load(Ordering::SeqCst)),
            extra_allocs: EXTRA_ALLOCS.load(Ordering::SeqCst),
        }
    }

    /// All counters at zero (to read totals with [`Counts::since`]).
    pub fn zero() -> Counts {
        Counts {
            calls: [0; N],
            extra_allocs: 0,
        }
    }

    /// Calls made since `earlier`, by symbol (only the non-zero ones).
    pub fn since(&self, earlier: &Counts) -> Vec<(&'static str, Category, u64)> {
        let mut out: Vec<_> = (0..N)
            .filter(|&i| self.calls[i] > earlier.calls[i])
            .map(|i| (NAMES[i], CATEGORIES[i], self.calls[i] - earlier.calls[i]))
            .collect();
        let extra = self.extra_allocs - earlier.extra_allocs;
        if extra > 0 {
            out.push(("<thread-local block>", Category::Alloc, extra));
        }
        out
    }

    /// Calls of one category since `earlier`.
    pub fn category_since(&self, earlier: &Counts, category: Category) -> u64 {
        self.since(earlier)
            .iter()
            .filter(|(_, c, _)| *c == category)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Calls of one symbol in total.
    pub fn of(&self, s: S) -> u64 {
        self.calls[s as usize]
    }
}

/// What an import was bound to.
pub struct Resolved {
    pub addr: usize,
    pub implemented: bool,
}

/// The address for `symbol` imported from `library`: a shim function or datum, or a trap that
/// aborts the test with the symbol's name when called.
pub fn resolve(symbol: &str, library: &str) -> Resolved {
    if let Some(e) = table()
        .iter()
        .find(|e| e.name == symbol && e.lib.install_name() == library)
    {
        return Resolved {
            addr: e.addr,
            implemented: true,
        };
    }
    Resolved {
        addr: trap_for(&format!("{symbol} (from {library})")),
        implemented: false,
    }
}

/// Prints `what` and aborts the process: for conditions a test cannot continue from (an
/// unimplemented import called, the image aborting, a corrupted lock).
pub fn fatal(what: &str) -> ! {
    use std::io::Write;
    // Straight to the stderr stream: `eprintln!` inside a test is captured by libtest, and the
    // capture is lost when the process aborts.
    let _ = writeln!(std::io::stderr(), "macos-loader: {what}");
    std::process::abort()
}

extern "C" fn trap(name: *const std::ffi::c_char) -> ! {
    // SAFETY: `name` is one of the leaked C strings written into the trap stubs.
    let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
    fatal(&format!(
        "the plug-in called `{name}`, which the shim does not implement"
    ))
}

/// Executable trap stubs, one per unknown import: `mov rdi, name; mov rax, trap; jmp rax`.
struct TrapPage {
    base: usize,
    used: usize,
}
static TRAPS: Mutex<Vec<TrapPage>> = Mutex::new(Vec::new());
const STUB: usize = 32;
const TRAP_PAGE: usize = 4096;

fn trap_for(name: &str) -> usize {
    let name: &'static CString = Box::leak(Box::new(
        CString::new(name).unwrap_or_else(|_| c"<bad name>".to_owned()),
    ));
    let mut code = [0xCCu8; STUB]; // int3 padding
    code[0..2].copy_from_slice(&[0x48, 0xBF]); // movabs rdi, imm64
    code[2..10].copy_from_slice(&(name.as_ptr() as u64).to_le_bytes());
    code[10..12].copy_from_slice(&[0x48, 0xB8]); // movabs rax, imm64
    code[12..20].copy_from_slice(&(trap as *const () as usize as u64).to_le_bytes());
    code[20..22].copy_from_slice(&[0xFF, 0xE0]); // jmp rax
    let mut pages = TRAPS.lock();
    if pages.last().is_none_or(|p| p.used + STUB > TRAP_PAGE) {
        // SAFETY: anonymous private mapping, result checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                TRAP_PAGE,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            fatal("mmap for trap stubs failed");
        }
        pages.push(TrapPage {
            base: p as usize,
            used: 0,
        });
    }
    let page = pages.last_mut().expect("a page");
    let at = page.base + page.used;
    // SAFETY: the page is ours; made writable only while one stub is written into unused bytes,
    // then executable again (never writable and executable at once).
    unsafe {
        libc::mprotect(
            page.base as *mut libc::c_void,
            TRAP_PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
        );
        std::ptr::copy_nonoverlapping(code.as_ptr(), at as *mut u8, STUB);
        libc::mprotect(
            page.base as *mut libc::c_void,
            TRAP_PAGE,
            libc::PROT_READ | libc::PROT_EXEC,
        );
    }
    page.used += STUB;
    at
}
