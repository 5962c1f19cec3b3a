//! os_log imitated on Linux (and under the `sim` feature): every call is counted, every record
//! is kept with its subsystem, category, type, format and the text **decoded from the argument
//! buffer** by [`decode`] and [`render`], which read the buffer layout independently of the
//! encoder in `oslog/mod.rs` (from the documented layout: header `{summary, count}`, then per
//! argument `{descriptor = type << 4 | flags, size, value}`).
//!
//! The loader's libSystem shim (`hardmute-macos-loader`) binds the shipped slice's
//! `_os_log_create`, `_os_log_type_enabled` and `__os_log_impl` to [`create`], [`type_enabled`]
//! and [`record_impl`], so the shipped bytes' records land here too. This checks the bytes
//! against our reading of the format, not against a Mac's `log` tool.
//!
//! As on macOS by default, `OS_LOG_TYPE_DEBUG` is disabled; every other type is enabled.

use core::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{OneStringBuffer, OsLog, OsLogType, FORMAT};

/// Every call of [`create`], [`type_enabled`] and [`record_impl`].
static CALLS: AtomicU64 = AtomicU64::new(0);
/// The log objects made by [`create`]: (subsystem, category); a handle is its index + 1.
static LOGS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());

/// One `_os_log_impl` call as the log would store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub subsystem: String,
    pub category: String,
    pub ty: OsLogType,
    /// `__dso_handle` as passed.
    pub dso: usize,
    /// The format string's address (a constant inside the image on macOS).
    pub format_addr: usize,
    pub format: String,
    /// The buffer size passed.
    pub size: u32,
    /// The message the format and the decoded arguments make, or why they make none.
    pub text: Result<String, String>,
}

/// Total os_log calls so far (for the realtime checks: none may happen during IO).
pub fn calls() -> u64 {
    CALLS.load(Ordering::SeqCst)
}

/// Every record so far.
pub fn records() -> Vec<Record> {
    RECORDS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `os_log_create`.
///
/// # Safety
/// Both arguments are live NUL-terminated strings.
pub unsafe fn create(subsystem: *const c_char, category: *const c_char) -> *mut c_void {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if subsystem.is_null() || category.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: caller contract.
    let (s, c) = unsafe { (CStr::from_ptr(subsystem), CStr::from_ptr(category)) };
    let mut logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    logs.push((
        s.to_string_lossy().into_owned(),
        c.to_string_lossy().into_owned(),
    ));
    logs.len() as *mut c_void
}

/// `os_log_type_enabled`: everything but debug.
pub fn type_enabled(_log: *mut c_void, ty: OsLogType) -> bool {
    CALLS.fetch_add(1, Ordering::SeqCst);
    ty != super::OS_LOG_TYPE_DEBUG
}

/// `_os_log_impl`: decodes and keeps the record.
///
/// # Safety
/// `format` is a live C string; `buf` is readable for `size` bytes, and every string argument
/// it points at is live for the call.
pub unsafe fn record_impl(
    dso: *const c_void,
    log: *mut c_void,
    ty: OsLogType,
    format: *const c_char,
    buf: *const u8,
    size: u32,
) {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let (subsystem, category) = LOGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get((log as usize).wrapping_sub(1))
        .cloned()
        .unwrap_or_else(|| ("<not a log object>".into(), String::new()));
    let fmt = if format.is_null() {
        String::from("<null format>")
    } else {
        // SAFETY: caller contract.
        unsafe { CStr::from_ptr(format) }
            .to_string_lossy()
            .into_owned()
    };
    let bytes: &[u8] = if buf.is_null() {
        &[]
    } else {
        // SAFETY: caller contract.
        unsafe { std::slice::from_raw_parts(buf, size as usize) }
    };
    // SAFETY: caller contract: string arguments are live.
    let text = decode(bytes).and_then(|items| unsafe { render(&fmt, &items) });
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Record {
            subsystem,
            category,
            ty,
            dso: dso as usize,
            format_addr: format as usize,
            format: fmt,
            size,
            text,
        });
}

/// One argument of an os_log buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// High nibble of the descriptor: 0 scalar, 1 count, 2 string, 3 pointer/data, 4 object, ...
    pub kind: u8,
    /// Low nibble: 0x1 private, 0x2 public.
    pub flags: u8,
    pub data: Vec<u8>,
}

/// Splits an os_log argument buffer into its arguments, checking the header against them: the
/// count, the summary's non-scalar bit (0x02) and private bit (0x01), and that the arguments
/// end exactly at the buffer's end.
pub fn decode(buf: &[u8]) -> Result<Vec<Item>, String> {
    let [summary, count, rest @ ..] = buf else {
        return Err(format!("{} bytes: no header", buf.len()));
    };
    let mut items = Vec::new();
    let mut at = rest;
    while let [descriptor, size, tail @ ..] = at {
        let size = *size as usize;
        if tail.len() < size {
            return Err(format!(
                "argument {} claims {size} bytes, {} left",
                items.len(),
                tail.len()
            ));
        }
        items.push(Item {
            kind: descriptor >> 4,
            flags: descriptor & 0x0F,
            data: tail[..size].to_vec(),
        });
        at = &tail[size..];
    }
    if !at.is_empty() {
        return Err(format!("{} stray byte(s) after the arguments", at.len()));
    }
    if items.len() != *count as usize {
        return Err(format!(
            "header counts {count}, buffer holds {}",
            items.len()
        ));
    }
    let non_scalar = items.iter().any(|i| i.kind != 0);
    let private = items.iter().any(|i| i.flags & 0x1 != 0);
    let expected = (u8::from(non_scalar) << 1) | u8::from(private);
    if *summary != expected {
        return Err(format!(
            "summary {summary:#04x}, the arguments say {expected:#04x}"
        ));
    }
    Ok(items)
}

/// The message `format` and the decoded arguments make. Supports `%s` with an optional
/// `{public}` / `{private}` annotation (private renders as `<private>`, as the log shows it) and
/// `%%`; anything else is an error, as is a count mismatch.
///
/// # Safety
/// Every string argument's address is null or a live C string.
pub unsafe fn render(format: &str, items: &[Item]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = items.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut annotation = String::new();
        if chars.peek() == Some(&'{') {
            chars.next();
            for a in chars.by_ref() {
                if a == '}' {
                    break;
                }
                annotation.push(a);
            }
        }
        match chars.next() {
            Some('s') => {}
            other => return Err(format!("unsupported conversion {other:?} in {format:?}")),
        }
        let arg = args.next().ok_or("more conversions than arguments")?;
        if arg.kind != 2 || arg.data.len() != 8 {
            return Err(format!("%s got {arg:?}"));
        }
        let public = arg.flags & 0x2 != 0 && arg.flags & 0x1 == 0;
        if public != (annotation == "public") {
            return Err(format!(
                "annotation {annotation:?} but argument flags {:#x}",
                arg.flags
            ));
        }
        if !public {
            out.push_str("<private>");
            continue;
        }
        let addr = u64::from_le_bytes(arg.data[..].try_into().expect("8 bytes")) as usize;
        if addr == 0 {
            out.push_str("(null)");
        } else {
            // SAFETY: caller contract.
            let s = unsafe { CStr::from_ptr(addr as *const c_char) };
            out.push_str(&s.to_string_lossy());
        }
    }
    if args.next().is_some() {
        return Err("more arguments than conversions".into());
    }
    Ok(out)
}

/// The [`OsLog`] of the Linux build.
pub struct FakeOsLog;

/// Stands in for `__dso_handle` on Linux.
static DSO: u8 = 0;
static FORMAT_C: &CStr = c"%{public}s";
const _: () = assert!(super::bytes_eq(FORMAT_C.to_bytes(), FORMAT.as_bytes()));

impl OsLog for FakeOsLog {
    fn create(subsystem: &CStr, category: &CStr) -> *mut c_void {
        // SAFETY: both are live C strings.
        unsafe { create(subsystem.as_ptr(), category.as_ptr()) }
    }

    unsafe fn enabled(log: *mut c_void, ty: OsLogType) -> bool {
        type_enabled(log, ty)
    }

    unsafe fn emit(log: *mut c_void, ty: OsLogType, buf: &mut OneStringBuffer) {
        // SAFETY: `buf` is 12 readable bytes; its string is live (caller contract).
        unsafe {
            record_impl(
                (&raw const DSO).cast(),
                log,
                ty,
                FORMAT_C.as_ptr(),
                (buf as *const OneStringBuffer).cast(),
                core::mem::size_of::<OneStringBuffer>() as u32,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoder_rejects_what_the_format_forbids() {
        let p = c"x".as_ptr() as u64;
        let mut good = vec![0x02, 0x01, 0x22, 0x08];
        good.extend_from_slice(&p.to_le_bytes());
        assert!(decode(&good).is_ok());
        let mut wrong_count = good.clone();
        wrong_count[1] = 2;
        assert!(decode(&wrong_count)
            .unwrap_err()
            .contains("header counts 2"));
        let mut wrong_summary = good.clone();
        wrong_summary[0] = 0;
        assert!(decode(&wrong_summary).unwrap_err().contains("summary"));
        assert!(decode(&good[..11]).unwrap_err().contains("claims 8 bytes"));
        let mut stray = good.clone();
        stray.push(0);
        assert!(decode(&stray).unwrap_err().contains("stray"));
        // A private string renders as the log shows it; a mismatched annotation is an error.
        let mut private = vec![0x03, 0x01, 0x21, 0x08];
        private.extend_from_slice(&p.to_le_bytes());
        let items = decode(&private).unwrap();
        // SAFETY: the argument is a live C string.
        assert_eq!(
            unsafe { render("%{private}s", &items) }.unwrap(),
            "<private>"
        );
        assert!(unsafe { render("%{public}s", &items) }.is_err());
        let items = decode(&good).unwrap();
        assert_eq!(
            unsafe { render("a %{public}s %%", &items) }.unwrap(),
            "a x %"
        );
        assert!(unsafe { render("%d", &items) }.is_err());
        assert!(unsafe { render("none", &items) }.is_err());
    }
}
