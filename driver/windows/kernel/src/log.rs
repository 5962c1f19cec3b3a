//! The driver's log channel: `DbgPrintEx` with component `DPFLTR_IHVAUDIO_ID`, the channel
//! Windows gives audio hardware vendors' drivers (read with DebugView or WinDbg; see the
//! README's "Logs"). Levels: error -> `DPFLTR_ERROR_LEVEL` (shown by default), warning ->
//! `DPFLTR_WARNING_LEVEL`, info -> `DPFLTR_INFO_LEVEL` (both filtered out unless the Debug
//! Print Filter enables them).
//!
//! Only for life-cycle events and errors (DriverEntry, AddDevice, StartDevice, the control
//! device, bridge attach/detach, refused requests). Never from the timer callback, GetPosition,
//! GetReadPacket or anything they call: the realtime rule allows no logging there, and
//! `cargo test -p xtask` (`driver_realtime_path_never_logs`) checks the sources for it.
//!
//! A line is formatted into a stack buffer (no pool allocation) and passed as one `%s`
//! argument, so nothing in it is ever read as a format directive. `DbgPrintEx` may be called
//! at IRQL <= DIRQL; the callers run at PASSIVE_LEVEL (DriverEntry, PnP, IRP dispatch) or in
//! the bridge IRP's cancel routine.

use crate::ddk::extra::DbgPrintEx;
use core::fmt::{self, Write};

/// `DPFLTR_IHVAUDIO_ID` (dpfilter.h).
pub const DPFLTR_IHVAUDIO_ID: u32 = 79;

/// `DPFLTR_*_LEVEL` (dpfilter.h) for each of our levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Level {
    Error = 0,
    Warning = 1,
    Info = 3,
}

/// Every line starts with this, so a filter in DebugView finds the driver's lines.
pub const PREFIX: &str = "hardmute: ";
/// Longer lines are cut (DbgPrintEx itself keeps at most 512 bytes per call).
const LINE_BYTES: usize = 200;

struct Line {
    buf: [u8; LINE_BYTES + 2],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // A NUL inside would end the line early: replaced. Room is kept for "\n\0".
        for &b in s.as_bytes() {
            if self.len == LINE_BYTES {
                break;
            }
            self.buf[self.len] = if b == 0 { b'?' } else { b };
            self.len += 1;
        }
        Ok(())
    }
}

/// Writes one line at `level`.
pub fn line(level: Level, args: fmt::Arguments<'_>) {
    let mut l = Line {
        buf: [0; LINE_BYTES + 2],
        len: 0,
    };
    let _ = l.write_str(PREFIX);
    let _ = l.write_fmt(args);
    l.buf[l.len] = b'\n';
    l.buf[l.len + 1] = 0;
    // SAFETY: a NUL-terminated "%s" format and a NUL-terminated argument that outlives the
    // call; DbgPrintEx is callable at IRQL <= DIRQL (callers are at PASSIVE or DISPATCH).
    unsafe {
        DbgPrintEx(
            DPFLTR_IHVAUDIO_ID,
            level as u32,
            c"%s".as_ptr().cast(),
            l.buf.as_ptr(),
        );
    }
}

/// `klog!(error | warning | info, "format", args...)`.
macro_rules! klog {
    (error, $($t:tt)*) => { $crate::log::line($crate::log::Level::Error, format_args!($($t)*)) };
    (warning, $($t:tt)*) => { $crate::log::line($crate::log::Level::Warning, format_args!($($t)*)) };
    (info, $($t:tt)*) => { $crate::log::line($crate::log::Level::Info, format_args!($($t)*)) };
}
