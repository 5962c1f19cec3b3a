//! os_log through libSystem: the functions os/log.h's macros expand to.

use core::ffi::{c_char, c_void, CStr};

use super::{OneStringBuffer, OsLog, OsLogType, FORMAT};

unsafe extern "C" {
    /// os/log.h.
    fn os_log_create(subsystem: *const c_char, category: *const c_char) -> *mut c_void;
    /// os/log.h (`bool`, one byte, as Rust's).
    fn os_log_type_enabled(log: *mut c_void, ty: OsLogType) -> bool;
    /// What `os_log_with_type` expands to (os/log.h): `buf` holds the arguments in the os_log
    /// buffer format, `size` its length.
    fn _os_log_impl(
        dso: *mut c_void,
        log: *mut c_void,
        ty: OsLogType,
        format: *const c_char,
        buf: *mut u8,
        size: u32,
    );
    /// The linker-defined Mach-O header of this image (`___dso_handle`): tells the log which
    /// binary `format` lives in.
    static __dso_handle: u8;
}

/// The format string, inside this binary where the log reads it from: the section clang puts
/// `os_log` format strings in.
#[link_section = "__TEXT,__oslogstring,cstring_literals"]
static FORMAT_C: [u8; 11] = *b"%{public}s\0";
const _: () = {
    let f = FORMAT.as_bytes();
    assert!(f.len() + 1 == FORMAT_C.len() && FORMAT_C[f.len()] == 0);
    assert!(super::bytes_eq(f, FORMAT_C.split_at(10).0));
};

pub struct AppleOsLog;

impl OsLog for AppleOsLog {
    fn create(subsystem: &CStr, category: &CStr) -> *mut c_void {
        // SAFETY: two live C strings; the result is a log object (never freed, as os_log's are).
        unsafe { os_log_create(subsystem.as_ptr(), category.as_ptr()) }
    }

    unsafe fn enabled(log: *mut c_void, ty: OsLogType) -> bool {
        // SAFETY: `log` came from os_log_create (caller contract).
        unsafe { os_log_type_enabled(log, ty) }
    }

    unsafe fn emit(log: *mut c_void, ty: OsLogType, buf: &mut OneStringBuffer) {
        // SAFETY: `__dso_handle` is this image's header (only its address is taken); FORMAT_C
        // is a NUL-terminated constant in this image; `buf` is 12 writable bytes in the layout
        // the format's one `%{public}s` needs, its string live (caller contract); `log` came
        // from os_log_create.
        unsafe {
            _os_log_impl(
                (&raw const __dso_handle).cast_mut().cast(),
                log,
                ty,
                FORMAT_C.as_ptr().cast(),
                (buf as *mut OneStringBuffer).cast(),
                core::mem::size_of::<OneStringBuffer>() as u32,
            )
        }
    }
}
