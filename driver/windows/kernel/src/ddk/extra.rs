//! Kernel exports the mingw-w64 import libraries and headers do not know (newer than
//! Vista), declared by hand from the WDK documentation, and constants the headers only
//! define as macros.
#![allow(non_snake_case, non_camel_case_types)]

use super::*;

/// Opaque `EX_TIMER` (wdm.h, Windows 8.1+).
#[repr(C)]
pub struct EX_TIMER {
    _opaque: [u8; 0],
}
pub type PEX_TIMER = *mut EX_TIMER;
/// `EXT_CALLBACK`: runs at DISPATCH_LEVEL.
pub type PEXT_CALLBACK = Option<unsafe extern "C" fn(Timer: PEX_TIMER, Context: PVOID)>;
/// `EX_TIMER_HIGH_RESOLUTION`: 1 ms periods without raising the global timer resolution
/// for longer than the timer runs.
pub const EX_TIMER_HIGH_RESOLUTION: ULONG = 0x4;

// ExAllocateTimer & co. are exported by ntoskrnl.exe since Windows 8.1; mingw-w64's
// libntoskrnl.a predates them. raw-dylib needs no import library.
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    pub fn ExAllocateTimer(
        Callback: PEXT_CALLBACK,
        CallbackContext: PVOID,
        Attributes: ULONG,
    ) -> PEX_TIMER;
    /// `Parameters` is `_In_opt_ PEXT_SET_PARAMETERS`; null = defaults (no wake tolerance).
    pub fn ExSetTimer(
        Timer: PEX_TIMER,
        DueTime: LONGLONG,
        Period: LONGLONG,
        Parameters: PVOID,
    ) -> BOOLEAN;
    pub fn ExCancelTimer(Timer: PEX_TIMER, Parameters: PVOID) -> BOOLEAN;
    /// Reads the owner's SID from the service key (wdm.h; every Windows version exports it).
    pub fn ZwOpenKey(
        KeyHandle: *mut HANDLE,
        DesiredAccess: ULONG,
        ObjectAttributes: POBJECT_ATTRIBUTES,
    ) -> NTSTATUS;
    /// `KeyValueInformationClass` is `KEY_VALUE_INFORMATION_CLASS` (an enum = ULONG).
    pub fn ZwQueryValueKey(
        KeyHandle: HANDLE,
        ValueName: PUNICODE_STRING,
        KeyValueInformationClass: ULONG,
        KeyValueInformation: PVOID,
        Length: ULONG,
        ResultLength: *mut ULONG,
    ) -> NTSTATUS;
    pub fn ExDeleteTimer(
        Timer: PEX_TIMER,
        Cancel: BOOLEAN,
        Wait: BOOLEAN,
        Parameters: PVOID,
    ) -> BOOLEAN;
    /// The kernel debugger's print channel (wdm.h; every Windows version exports it). The
    /// driver's log (`log.rs`) only ever passes the format `"%s"` and one string.
    pub fn DbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: *const u8, ...) -> ULONG;
}

pub const IRP_MJ_CREATE: usize = 0x00;
pub const IRP_MJ_CLOSE: usize = 0x02;
pub const IRP_MJ_DEVICE_CONTROL: usize = 0x0e;
pub const IRP_MJ_CLEANUP: usize = 0x12;
pub const FILE_DEVICE_UNKNOWN: ULONG = 0x22;
pub const FILE_DEVICE_SECURE_OPEN: ULONG = 0x100;
pub const DO_DEVICE_INITIALIZING: ULONG = 0x80;
pub const DO_BUFFERED_IO: ULONG = 0x4;
pub const OBJ_KERNEL_HANDLE: ULONG = 0x200;
pub const OBJ_CASE_INSENSITIVE: ULONG = 0x40;
pub const KEY_QUERY_VALUE: ULONG = 0x1;
/// `KeyValuePartialInformation`: `KEY_VALUE_PARTIAL_INFORMATION { TitleIndex, Type,
/// DataLength, Data[] }`, the data at byte 12.
pub const KEY_VALUE_PARTIAL_INFORMATION_CLASS: ULONG = 2;
pub const REG_BINARY: ULONG = 3;
pub const WRITE_DAC: ULONG = 0x0004_0000;
pub const DACL_SECURITY_INFORMATION: ULONG = 0x4;
pub const KERNEL_MODE: KPROCESSOR_MODE = 0;
pub const TOKEN_USER_CLASS: TOKEN_INFORMATION_CLASS = 1;
/// `NonPagedPoolNx`: every allocation of this driver is touched at DISPATCH_LEVEL.
pub const NON_PAGED_POOL_NX: POOL_TYPE = 512;
pub const MM_CACHED: MEMORY_CACHING_TYPE = 1;
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
/// `NormalPagePriority | MdlMappingNoExecute`.
pub const NORMAL_PAGE_PRIORITY_NX: ULONG = 16 | 0x4000_0000;
pub const IO_NO_INCREMENT: CCHAR = 0;
pub const SL_PENDING_RETURNED: UCHAR = 0x01;
/// PortCls: `PCFILTER_NODE`, the filter itself as a connection endpoint.
pub const PCFILTER_NODE: ULONG = ULONG::MAX;
/// Relative due time / period units: 100 ns.
pub const ONE_MS_IN_100NS: LONGLONG = 10_000;

/// The mem* functions core's codegen calls, from the kernel's own exports (a driver has no
/// CRT). This matches `cargo xtask cross-check`'s shared `-Zbuild-std=core` build, which does
/// not enable compiler_builtins' `mem` feature.
#[allow(dead_code)] // link-only: Rust code never names them
mod kernel_runtime {
    #[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
    unsafe extern "C" {
        pub fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        pub fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        pub fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8;
        pub fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32;
    }
}

/// `ULONG64` and `BOOL` (an `int`) as the WDK defines them (the generated bindings do not
/// need them elsewhere).
pub type ULONG64 = u64;
#[allow(clippy::upper_case_acronyms)] // the DDK's name
pub type BOOL = i32;

/// `IMiniportWaveRTInputStream` (portcls.h, Windows 10+, NTDDI_THRESHOLD): packet-mode
/// capture. mingw-w64's portcls.h predates it, so it is declared here from the WDK header:
/// IUnknown's three slots, then `GetReadPacket`. Layout asserted in `layout.rs`.
#[repr(C)]
pub struct IMiniportWaveRTInputStream {
    pub lpVtbl: *const IMiniportWaveRTInputStreamVtbl,
}
#[repr(C)]
pub struct IMiniportWaveRTInputStreamVtbl {
    pub QueryInterface: Option<
        unsafe extern "C" fn(
            This: *mut IMiniportWaveRTInputStream,
            InterfaceId: *const IID,
            Interface: *mut PVOID,
        ) -> NTSTATUS,
    >,
    pub AddRef: Option<unsafe extern "C" fn(This: *mut IMiniportWaveRTInputStream) -> ULONG>,
    pub Release: Option<unsafe extern "C" fn(This: *mut IMiniportWaveRTInputStream) -> ULONG>,
    pub GetReadPacket: Option<
        unsafe extern "C" fn(
            This: *mut IMiniportWaveRTInputStream,
            PacketNumber: *mut ULONG,
            Flags: *mut DWORD,
            PerformanceCounterValue: *mut ULONG64,
            MoreData: *mut BOOL,
        ) -> NTSTATUS,
    >,
}
