//! One line per event, appended to `C:\hardmute-portcls.log` in the Wine prefix (winedevice's
//! stdout/stderr are not reliably anyone's). Formatting goes into a stack buffer: no heap.

use crate::win32::*;
use core::fmt::{self, Write};
use core::ptr::null_mut;

pub const LOG_PATH: &[u8] = b"C:\\hardmute-portcls.log\0";

struct Line {
    buf: [u8; 480],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

pub fn line(args: fmt::Arguments) {
    let mut l = Line {
        buf: [0; 480],
        len: 0,
    };
    let _ = l.write_fmt(args);
    let _ = l.write_str("\r\n");
    // SAFETY: NUL-terminated path; the handle is closed below.
    unsafe {
        let file = CreateFileA(
            LOG_PATH.as_ptr(),
            FILE_APPEND_DATA,
            FILE_SHARE_RW,
            null_mut(),
            OPEN_ALWAYS,
            0,
            null_mut(),
        );
        if file == INVALID_HANDLE {
            return;
        }
        let mut written = 0;
        WriteFile(file, l.buf.as_ptr(), l.len as u32, &mut written, null_mut());
        CloseHandle(file);
    }
}

macro_rules! say {
    ($($t:tt)*) => { $crate::log::line(format_args!($($t)*)) };
}
