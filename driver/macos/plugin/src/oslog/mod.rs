//! The plug-in's `log::` records, written to the unified log (os_log).
//!
//! coreaudiod gives a plug-in no stderr anyone reads; the unified log is where its messages go.
//! [`install`] (called by the factory, so before anything else can log) makes [`OsLogger`] the
//! `log` crate's logger. Every record goes to subsystem [`SUBSYSTEM`] (the bundle id,
//! `org.hardmute.driver`), category [`CATEGORY`], as `log stream --level info --predicate
//! 'subsystem == "org.hardmute.driver"'` shows it on a Mac.
//!
//! os_log's public API is C macros; underneath they call three libSystem functions, which
//! [`OsLog`] names: `os_log_create(subsystem, category)` once, `os_log_type_enabled(log, type)`,
//! and `_os_log_impl(dso, log, type, format, buf, size)`. `format` must be a constant inside the
//! image `dso` points at (`__dso_handle`, the image's Mach-O header): the log stores an offset,
//! and `log` reads the format string from the binary. The one format is `"%{public}s"`, placed in
//! `__TEXT,__oslogstring` as clang places the macros' strings ([`apple`]); its one argument is the
//! formatted message, encoded in the os_log argument buffer ([`OneStringBuffer`]).
//!
//! **Not realtime.** A record is formatted into a fixed 1 KiB stack buffer ([`Message`]; no heap
//! allocation in this module), but `_os_log_impl` itself takes locks and may enter the kernel. The
//! IO operations never log: `tests/sim_coreaudiod.rs` counts every os_log call around IO, on the
//! Linux build (the [`fake`]) and on the shipped bytes (the loader's shim), and requires none.
//!
//! Level mapping: `error` → `OS_LOG_TYPE_ERROR`, `warn` → `OS_LOG_TYPE_DEFAULT`, `info` →
//! `OS_LOG_TYPE_INFO`, `debug`/`trace` → `OS_LOG_TYPE_DEBUG` (os_log keeps info in memory only
//! and drops debug unless enabled: `log stream --level info` or `--level debug` shows them).

use core::ffi::{c_char, c_void, CStr};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicPtr, Ordering};

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
pub mod apple;
#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub mod fake;

/// The os_log subsystem: the plug-in bundle's id.
pub const SUBSYSTEM: &str = hardmute_macos_contract::DRIVER_BUNDLE_ID;
/// The one category every record of the plug-in uses.
pub const CATEGORY: &str = "plugin";
/// The format every record is written with (`_os_log_impl`'s `format`; see [`apple`]).
pub const FORMAT: &str = "%{public}s";

const SUBSYSTEM_C: &CStr = c"org.hardmute.driver";
const CATEGORY_C: &CStr = c"plugin";
const _: () = {
    // The C strings are the Rust constants, byte for byte (compile-time).
    assert!(bytes_eq(SUBSYSTEM_C.to_bytes(), SUBSYSTEM.as_bytes()));
    assert!(bytes_eq(CATEGORY_C.to_bytes(), CATEGORY.as_bytes()));
};

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `os_log_type_t` (os/log.h, a `uint8_t`).
pub type OsLogType = u8;
pub const OS_LOG_TYPE_DEFAULT: OsLogType = 0x00;
pub const OS_LOG_TYPE_INFO: OsLogType = 0x01;
pub const OS_LOG_TYPE_DEBUG: OsLogType = 0x02;
pub const OS_LOG_TYPE_ERROR: OsLogType = 0x10;
pub const OS_LOG_TYPE_FAULT: OsLogType = 0x11;

/// The os_log type a `log` level is written as.
pub fn os_log_type(level: log::Level) -> OsLogType {
    match level {
        log::Level::Error => OS_LOG_TYPE_ERROR,
        log::Level::Warn => OS_LOG_TYPE_DEFAULT,
        log::Level::Info => OS_LOG_TYPE_INFO,
        log::Level::Debug | log::Level::Trace => OS_LOG_TYPE_DEBUG,
    }
}

/// The os_log argument buffer for one public C-string argument, as `__builtin_os_log_format`
/// lays it out: a two-byte header (summary flags, argument count), then per argument a
/// descriptor byte (type in the high nibble, privacy flags in the low nibble), a size byte and
/// the value — here the string's address. Packed: 12 bytes, no padding before the pointer.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct OneStringBuffer {
    /// Header flags: 0x02 = has a non-scalar argument (a string), 0x01 would mean a private one.
    pub summary: u8,
    /// Number of arguments.
    pub count: u8,
    /// `(OSLF_CMD_TYPE_STRING = 2) << 4 | OSLF_CMD_FLAG_PUBLIC = 0x2`.
    pub descriptor: u8,
    /// Size of the value: one pointer.
    pub size: u8,
    /// The NUL-terminated string, live for the `_os_log_impl` call.
    pub value: *const c_char,
}

const _: () = {
    assert!(core::mem::size_of::<OneStringBuffer>() == 12);
    assert!(core::mem::align_of::<OneStringBuffer>() == 1);
    assert!(core::mem::offset_of!(OneStringBuffer, summary) == 0);
    assert!(core::mem::offset_of!(OneStringBuffer, count) == 1);
    assert!(core::mem::offset_of!(OneStringBuffer, descriptor) == 2);
    assert!(core::mem::offset_of!(OneStringBuffer, size) == 3);
    assert!(core::mem::offset_of!(OneStringBuffer, value) == 4);
};

/// Header flag: some argument is not a scalar.
const HDR_HAS_NON_SCALAR: u8 = 0x02;
/// Argument type: C string (`%s`).
const CMD_TYPE_STRING: u8 = 2;
/// Argument flag: `{public}`.
const CMD_FLAG_PUBLIC: u8 = 0x2;

impl OneStringBuffer {
    /// The buffer for `"%{public}s"` with `s`.
    pub fn public(s: &CStr) -> OneStringBuffer {
        OneStringBuffer {
            summary: HDR_HAS_NON_SCALAR,
            count: 1,
            descriptor: (CMD_TYPE_STRING << 4) | CMD_FLAG_PUBLIC,
            size: core::mem::size_of::<*const c_char>() as u8,
            value: s.as_ptr(),
        }
    }

    /// Its bytes, as `_os_log_impl` reads them.
    pub fn bytes(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[0] = self.summary;
        out[1] = self.count;
        out[2] = self.descriptor;
        out[3] = self.size;
        let value = self.value; // copy out of the packed field
        out[4..].copy_from_slice(&(value as usize as u64).to_ne_bytes());
        out
    }
}

/// The three functions under os_log's macros. [`apple`] calls libSystem; [`fake`] records.
pub trait OsLog {
    /// `os_log_create`: the log object for a subsystem and category (null if none).
    fn create(subsystem: &CStr, category: &CStr) -> *mut c_void;
    /// `os_log_type_enabled`.
    ///
    /// # Safety
    /// `log` came from [`OsLog::create`].
    unsafe fn enabled(log: *mut c_void, ty: OsLogType) -> bool;
    /// `_os_log_impl(__dso_handle, log, ty, FORMAT, buf, sizeof buf)`.
    ///
    /// # Safety
    /// `log` came from [`OsLog::create`]; `buf.value` points at a live NUL-terminated string.
    unsafe fn emit(log: *mut c_void, ty: OsLogType, buf: &mut OneStringBuffer);
}

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
pub type Sys = apple::AppleOsLog;
#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub type Sys = fake::FakeOsLog;

/// How many bytes a message may take in the unified log, with its NUL. Longer ones are cut at a
/// character boundary and end in `...`.
pub const MESSAGE_CAPACITY: usize = 1024;
const ELLIPSIS: &[u8] = b"...";

/// A message formatted on the stack: no heap, NUL-terminated, cut at [`MESSAGE_CAPACITY`].
pub struct Message {
    buf: [u8; MESSAGE_CAPACITY],
    len: usize,
    truncated: bool,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            buf: [0; MESSAGE_CAPACITY],
            len: 0,
            truncated: false,
        }
    }
}

impl core::fmt::Write for Message {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if self.truncated {
            return Ok(());
        }
        let room = MESSAGE_CAPACITY - 1 - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        for (dst, &b) in self.buf[self.len..self.len + take]
            .iter_mut()
            .zip(s.as_bytes())
        {
            // An interior NUL would end the C string early: written as '?'.
            *dst = if b == 0 { b'?' } else { b };
        }
        self.len += take;
        if take < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

impl Message {
    /// The message formatted from `args` (never fails: a formatting error keeps what was written).
    pub fn format(args: core::fmt::Arguments<'_>) -> Message {
        let mut m = Message::default();
        let _ = m.write_fmt(args);
        m.finish();
        m
    }

    fn finish(&mut self) {
        if self.truncated {
            let mut end = self.len.min(MESSAGE_CAPACITY - 1 - ELLIPSIS.len());
            // Back to a character boundary: continuation bytes are 0b10xx_xxxx.
            while end > 0 && self.buf[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            self.buf[end..end + ELLIPSIS.len()].copy_from_slice(ELLIPSIS);
            self.len = end + ELLIPSIS.len();
        }
        self.buf[self.len] = 0;
    }

    /// The message as a C string (no interior NUL by construction).
    pub fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }

    /// Whether the message was cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

/// The `log::Log` that writes to os_log through `B`.
pub struct OsLogger<B: OsLog> {
    log: AtomicPtr<c_void>,
    _backend: core::marker::PhantomData<fn() -> B>,
}

impl<B: OsLog> Default for OsLogger<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: OsLog> OsLogger<B> {
    pub const fn new() -> Self {
        OsLogger {
            log: AtomicPtr::new(core::ptr::null_mut()),
            _backend: core::marker::PhantomData,
        }
    }

    /// Creates the log object (subsystem [`SUBSYSTEM`], category [`CATEGORY`]) unless done.
    pub fn open(&self) {
        if self.log.load(Ordering::Acquire).is_null() {
            let log = B::create(SUBSYSTEM_C, CATEGORY_C);
            // Two racing opens: the loser's object stays unused (os_log objects live forever).
            let _ = self.log.compare_exchange(
                core::ptr::null_mut(),
                log,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn handle(&self) -> Option<*mut c_void> {
        let log = self.log.load(Ordering::Acquire);
        (!log.is_null()).then_some(log)
    }
}

impl<B: OsLog> log::Log for OsLogger<B> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        // SAFETY: the handle came from B::create.
        self.handle()
            .is_some_and(|log| unsafe { B::enabled(log, os_log_type(metadata.level())) })
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(log) = self.handle() else { return };
        let ty = os_log_type(record.level());
        // SAFETY: the handle came from B::create.
        if !unsafe { B::enabled(log, ty) } {
            return;
        }
        let message = Message::format(*record.args());
        let mut buf = OneStringBuffer::public(message.as_c_str());
        // SAFETY: the handle came from B::create; `message` outlives the call.
        unsafe { B::emit(log, ty, &mut buf) };
    }

    fn flush(&self) {}
}

static LOGGER: OsLogger<Sys> = OsLogger::new();

/// Makes os_log the `log` crate's logger (once per process; later calls change nothing). Not
/// for the IO path: it may create the log object.
pub fn install() {
    LOGGER.open();
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

#[cfg(all(test, any(not(target_vendor = "apple"), feature = "sim")))]
mod tests {
    use super::fake::{self, FakeOsLog};
    use super::*;
    use log::Log as _;

    fn emit(logger: &OsLogger<FakeOsLog>, level: log::Level, args: core::fmt::Arguments<'_>) {
        logger.log(
            &log::Record::builder()
                .level(level)
                .target("test")
                .args(args)
                .build(),
        );
    }

    #[test]
    fn the_buffer_is_the_documented_twelve_bytes() {
        let s = c"hello";
        let b = OneStringBuffer::public(s).bytes();
        assert_eq!(b[..4], [0x02, 0x01, 0x22, 0x08]);
        assert_eq!(b[4..], (s.as_ptr() as u64).to_le_bytes());
        // And our decoder reads it back as one public string.
        let items = fake::decode(&b).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            (items[0].kind, items[0].flags, items[0].data.len()),
            (2, 2, 8)
        );
    }

    #[test]
    fn levels_map_to_os_log_types() {
        assert_eq!(os_log_type(log::Level::Error), 0x10);
        assert_eq!(os_log_type(log::Level::Warn), 0x00);
        assert_eq!(os_log_type(log::Level::Info), 0x01);
        assert_eq!(os_log_type(log::Level::Debug), 0x02);
        assert_eq!(os_log_type(log::Level::Trace), 0x02);
    }

    #[test]
    fn a_record_reaches_the_log_with_subsystem_category_type_and_text() {
        let logger = OsLogger::<FakeOsLog>::new();
        logger.open();
        let marker = "unit-record-7731";
        emit(
            &logger,
            log::Level::Error,
            format_args!("{marker}: {} ü", 42),
        );
        emit(&logger, log::Level::Warn, format_args!("{marker}: warn"));
        // Debug is off in the fake, as on macOS by default: nothing is formatted or written.
        emit(&logger, log::Level::Debug, format_args!("{marker}: debug"));
        let mine: Vec<_> = fake::records()
            .into_iter()
            .filter(|r| r.text.as_deref().is_ok_and(|t| t.starts_with(marker)))
            .collect();
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert_eq!(mine[0].subsystem, "org.hardmute.driver");
        assert_eq!(mine[0].category, "plugin");
        assert_eq!(mine[0].format, "%{public}s");
        assert_eq!(mine[0].ty, OS_LOG_TYPE_ERROR);
        assert_eq!(mine[0].text.as_deref(), Ok("unit-record-7731: 42 ü"));
        assert_eq!(mine[1].ty, OS_LOG_TYPE_DEFAULT);
        assert_eq!(mine[1].size, 12);
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary_without_allocating() {
        let long = "é".repeat(MESSAGE_CAPACITY); // 2 bytes per char
        let (m, heap) =
            hardmute_alloc_counter::heap_ops(|| Message::format(format_args!("{long}{}", 1)));
        assert_eq!(heap, 0, "formatting allocated");
        assert!(m.truncated());
        let text = m.as_c_str().to_str().expect("valid UTF-8 after the cut");
        assert!(text.ends_with("..."), "{}", &text[text.len() - 8..]);
        assert!(text.len() < MESSAGE_CAPACITY);
        assert!(text.trim_end_matches("...").chars().all(|c| c == 'é'));
        let short = Message::format(format_args!("a\0b"));
        assert_eq!(short.as_c_str(), c"a?b");
        assert!(!short.truncated());
    }

    #[test]
    fn without_a_log_object_nothing_is_written() {
        let logger = OsLogger::<FakeOsLog>::new(); // never opened
        emit(&logger, log::Level::Error, format_args!("unopened-5521"));
        assert!(!log::Log::enabled(
            &logger,
            &log::Metadata::builder().level(log::Level::Error).build()
        ));
        assert!(fake::records()
            .iter()
            .all(|r| r.text.as_deref() != Ok("unopened-5521")));
    }
}
