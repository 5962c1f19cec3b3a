//! os_log for the shipped image: `_os_log_create`, `_os_log_type_enabled` and `__os_log_impl`
//! over the plug-in's own os_log fake (`hardmute_macos_plugin::oslog::fake`), which keeps each
//! record with its subsystem, category, type, `__dso_handle`, format address and the text
//! decoded from the argument buffer. Call-counted as [`super::Category::Log`], so the IO checks
//! see any os_log call.
//!
//! What this checks is the buffer against our reading of the os_log format (the decoder in the
//! fake), not against macOS's `log` tool, which needs a Mac.

use std::ffi::{c_char, c_void};

use hardmute_macos_plugin::oslog::fake;

use super::{hit, S};

/// `os_log_t os_log_create(const char *subsystem, const char *category)`.
///
/// # Safety
/// Both arguments are null or live C strings.
pub unsafe extern "C" fn os_log_create(
    subsystem: *const c_char,
    category: *const c_char,
) -> *mut c_void {
    hit(S::os_log_create);
    // SAFETY: caller contract.
    unsafe { fake::create(subsystem, category) }
}

/// `bool os_log_type_enabled(os_log_t, os_log_type_t)`.
pub extern "C" fn os_log_type_enabled(log: *mut c_void, ty: u8) -> bool {
    hit(S::os_log_type_enabled);
    fake::type_enabled(log, ty)
}

/// `void _os_log_impl(void *dso, os_log_t, os_log_type_t, const char *format, uint8_t *buf,
/// uint32_t size)`.
///
/// # Safety
/// As `fake::record_impl`: a live format string, `size` readable bytes at `buf`, live string
/// arguments.
pub unsafe extern "C" fn os_log_impl(
    dso: *const c_void,
    log: *mut c_void,
    ty: u8,
    format: *const c_char,
    buf: *const u8,
    size: u32,
) {
    hit(S::os_log_impl);
    // SAFETY: caller contract.
    unsafe { fake::record_impl(dso, log, ty, format, buf, size) }
}
