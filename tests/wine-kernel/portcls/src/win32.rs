//! The user-mode functions the stand-in uses inside winedevice.exe (raw-dylib: no import
//! libraries needed). Never available to a real kernel image.
#![allow(non_snake_case, clippy::upper_case_acronyms)]

use core::ffi::c_void;

pub type H = *mut c_void;
pub type ThreadProc = unsafe extern "system" fn(*mut c_void) -> u32;

pub const INVALID_HANDLE: H = usize::MAX as H;
pub const FILE_APPEND_DATA: u32 = 4;
pub const FILE_SHARE_RW: u32 = 3;
pub const OPEN_ALWAYS: u32 = 4;
pub const PAGE_READWRITE: u32 = 4;
pub const TOKEN_QUERY: u32 = 8;
pub const INFINITE: u32 = u32::MAX;
pub const FILE_MAP_ALL_ACCESS: u32 = 0xF001F;

#[link(name = "kernel32.dll", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    pub fn CreateFileA(
        name: *const u8,
        access: u32,
        share: u32,
        security: *mut c_void,
        disposition: u32,
        flags: u32,
        template: H,
    ) -> H;
    pub fn WriteFile(file: H, buf: *const u8, len: u32, written: *mut u32, ov: *mut c_void) -> i32;
    pub fn CloseHandle(h: H) -> i32;
    pub fn VirtualProtect(addr: *mut c_void, size: usize, new: u32, old: *mut u32) -> i32;
    pub fn GetModuleHandleA(name: *const u8) -> H;
    pub fn GetProcAddress(module: H, name: *const u8) -> *mut c_void;
    pub fn QueryPerformanceCounter(count: *mut i64) -> i32;
    pub fn QueryPerformanceFrequency(freq: *mut i64) -> i32;
    pub fn CreateThread(
        security: *mut c_void,
        stack: usize,
        start: ThreadProc,
        param: *mut c_void,
        flags: u32,
        id: *mut u32,
    ) -> H;
    pub fn WaitForSingleObject(h: H, ms: u32) -> u32;
    pub fn SetThreadPriority(thread: H, priority: i32) -> i32;
    pub fn Sleep(ms: u32);
    pub fn GetCurrentProcess() -> H;
    pub fn GetCurrentThreadId() -> u32;
    pub fn GetLastError() -> u32;
    pub fn ExitProcess(code: u32) -> !;
    pub fn CreateFileMappingA(
        file: H,
        security: *mut c_void,
        protect: u32,
        size_high: u32,
        size_low: u32,
        name: *const u8,
    ) -> H;
    pub fn MapViewOfFile(
        section: H,
        access: u32,
        offset_high: u32,
        offset_low: u32,
        bytes: usize,
    ) -> *mut c_void;
}

#[link(name = "advapi32.dll", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    pub fn OpenProcessToken(process: H, access: u32, token: *mut H) -> i32;
    pub fn GetTokenInformation(
        token: H,
        class: u32,
        info: *mut c_void,
        len: u32,
        returned: *mut u32,
    ) -> i32;
}

/// The performance counter (ticks, ticks per second).
pub fn qpc() -> (i64, i64) {
    let (mut now, mut freq) = (0i64, 0i64);
    // SAFETY: valid out pointers.
    unsafe {
        QueryPerformanceCounter(&mut now);
        QueryPerformanceFrequency(&mut freq);
    }
    (now, freq.max(1))
}
