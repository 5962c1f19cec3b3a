//! The checks (Windows only).

use hardmute_backend_windows::control_device::{BridgeRegistration, ControlDevice};
use hardmute_backend_windows::feed::{init_header, ring_geometry, RING_CHANNELS, RING_FRAMES};
use hardmute_core::ring::RingHeader;
use hardmute_core::ChangeSource;
use hardmute_windows_model::ioctl::{
    client, ctl_code, parse_request, FILE_DEVICE_UNKNOWN, IOCTL_HARDMUTE_GET_STATE,
    IOCTL_HARDMUTE_REGISTER_BRIDGE, IOCTL_HARDMUTE_SET_MUTE, METHOD_BUFFERED, METHOD_OUT_DIRECT,
};
use hardmute_windows_model::status::*;
use std::ffi::c_void;
use std::sync::Arc;
use std::time::{Duration, Instant};
use windows::core::{HSTRING, PCWSTR, PWSTR};
use windows::Win32::Foundation::{
    CloseHandle, LocalFree, ERROR_IO_PENDING, GENERIC_READ, GENERIC_WRITE, HANDLE, HLOCAL,
};
use windows::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, GetSecurityInfo, SDDL_REVISION_1,
    SE_KERNEL_OBJECT,
};
use windows::Win32::Security::{DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR};
use windows::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
    READ_CONTROL,
};
use windows::Win32::System::Memory::{
    VirtualAlloc, VirtualFree, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READWRITE,
};
use windows::Win32::System::Services::*;
use windows::Win32::System::Threading::CreateEventW;
use windows::Win32::System::IO::{CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED};

const CONTROL_PATH: &str = r"\\.\HardMuteControl";
const SERVICE: &str = "hardmute";

#[derive(Default)]
struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    /// A fact about Wine, not a check of the driver (printed, never counted).
    fn note(&mut self, name: &str, detail: impl std::fmt::Display) {
        println!("note {name}: {detail}");
    }

    fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) -> bool {
        if ok {
            self.passed += 1;
            println!("ok {name}: {detail}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {detail}");
        }
        ok
    }
}

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut checks = Checks::default();
    match args.first().map(String::as_str) {
        Some("load") if args.len() == 2 => load(&mut checks, &args[1]),
        Some("control") => control(&mut checks),
        Some("after-exit") => after_exit(&mut checks),
        Some("unload") => unload(&mut checks),
        Some("hold-bridge") => return hold_bridge(),
        Some("pnp") if args.len() == 2 => pnp(&mut checks, &args[1]),
        Some("daemon") if args.len() == 3 => daemon(&mut checks, &args[1], &args[2]),
        _ => {
            eprintln!(
                "usage: wine-kernel-probe load <driver path> | control | after-exit | unload | pnp <stand-in log> | daemon <hardmuted.exe> <hardmute.exe> | hold-bridge"
            );
            return 100;
        }
    }
    println!(
        "probe result: {} passed, {} failed",
        checks.passed, checks.failed
    );
    checks.failed.min(100) as i32
}

fn wide(s: &str) -> HSTRING {
    HSTRING::from(s)
}

// ---- load / unload: the service, as Wine's ntoskrnl tests install their drivers ----------

fn load(checks: &mut Checks, image: &str) {
    // SAFETY: plain SCM calls with owned strings; every handle is closed below.
    unsafe {
        let scm = match OpenSCManagerW(PCWSTR::null(), PCWSTR::null(), SC_MANAGER_ALL_ACCESS) {
            Ok(h) => h,
            Err(e) => {
                checks.check("load", false, format!("OpenSCManagerW failed: {e}"));
                return;
            }
        };
        // A previous run's service, if any, goes first.
        if let Ok(old) = OpenServiceW(scm, &wide(SERVICE), SERVICE_ALL_ACCESS) {
            let mut st = SERVICE_STATUS::default();
            let _ = ControlService(old, SERVICE_CONTROL_STOP, &mut st);
            let _ = DeleteService(old);
            let _ = CloseServiceHandle(old);
        }
        let service = match CreateServiceW(
            scm,
            &wide(SERVICE),
            &wide("HardMute Microphone (driver under test)"),
            SERVICE_ALL_ACCESS,
            SERVICE_KERNEL_DRIVER,
            SERVICE_DEMAND_START,
            SERVICE_ERROR_NORMAL,
            &wide(image),
            PCWSTR::null(),
            None,
            PCWSTR::null(),
            PCWSTR::null(),
            PCWSTR::null(),
        ) {
            Ok(h) => h,
            Err(e) => {
                checks.check(
                    "load",
                    false,
                    format!("CreateServiceW({image}) failed: {e}"),
                );
                let _ = CloseServiceHandle(scm);
                return;
            }
        };
        match StartServiceW(service, None) {
            Ok(()) => {
                let mut st = SERVICE_STATUS::default();
                let _ = QueryServiceStatus(service, &mut st);
                checks.check(
                    "load",
                    st.dwCurrentState == SERVICE_RUNNING,
                    format!(
                        "StartServiceW: DriverEntry returned success, service state {} (4 = RUNNING)",
                        st.dwCurrentState.0
                    ),
                );
            }
            Err(e) => {
                checks.check(
                    "load",
                    false,
                    format!(
                        "StartServiceW failed (DriverEntry failed or the image did not load): {e}"
                    ),
                );
            }
        }
        let _ = CloseServiceHandle(service);
        let _ = CloseServiceHandle(scm);
    }
}

fn unload(checks: &mut Checks) {
    // SAFETY: plain SCM calls; handles closed below.
    unsafe {
        let Ok(scm) = OpenSCManagerW(PCWSTR::null(), PCWSTR::null(), SC_MANAGER_ALL_ACCESS) else {
            checks.check("unload", false, "OpenSCManagerW failed");
            return;
        };
        match OpenServiceW(scm, &wide(SERVICE), SERVICE_ALL_ACCESS) {
            Ok(service) => {
                let mut st = SERVICE_STATUS::default();
                let stopped = ControlService(service, SERVICE_CONTROL_STOP, &mut st);
                let deadline = Instant::now() + Duration::from_secs(10);
                while st.dwCurrentState != SERVICE_STOPPED && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    let _ = QueryServiceStatus(service, &mut st);
                }
                checks.check(
                    "unload",
                    stopped.is_ok() && st.dwCurrentState == SERVICE_STOPPED,
                    format!(
                        "ControlService(STOP) {:?}: service state {} (1 = STOPPED; DriverUnload ran)",
                        stopped.map_err(|e| e.to_string()),
                        st.dwCurrentState.0
                    ),
                );
                let _ = DeleteService(service);
                let _ = CloseServiceHandle(service);
            }
            Err(e) => {
                checks.check("unload", false, format!("OpenServiceW failed: {e}"));
            }
        }
        let _ = CloseServiceHandle(scm);
        let gone = CreateFileW(
            &wide(CONTROL_PATH),
            (GENERIC_READ | GENERIC_WRITE).0,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            None,
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED,
            None,
        );
        checks.check(
            "unload control device gone",
            gone.is_err(),
            format!(
                "opening {CONTROL_PATH} after the stop: {:?}",
                gone.map(|_| "opened!").map_err(|e| e.to_string())
            ),
        );
    }
}

// ---- raw IOCTLs --------------------------------------------------------------------------

struct Raw(HANDLE);
impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: our handle.
        let _ = unsafe { CloseHandle(self.0) };
    }
}

fn open_raw(extra_access: u32) -> windows::core::Result<Raw> {
    // SAFETY: owned string; handle owned by Raw.
    unsafe {
        CreateFileW(
            &wide(CONTROL_PATH),
            (GENERIC_READ | GENERIC_WRITE).0 | extra_access,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            None,
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED,
            None,
        )
    }
    .map(Raw)
}

#[repr(C)]
struct IoStatusBlock {
    status: usize,
    information: usize,
}

#[link(name = "ntdll")]
unsafe extern "system" {
    fn NtDeviceIoControlFile(
        file: HANDLE,
        event: HANDLE,
        apc: *mut c_void,
        apc_context: *mut c_void,
        iosb: *mut IoStatusBlock,
        code: u32,
        input: *const c_void,
        input_len: u32,
        output: *mut c_void,
        output_len: u32,
    ) -> i32;
}

/// One IOCTL through NtDeviceIoControlFile, waited for; returns the NTSTATUS the driver
/// completed it with (the call's own status, or the IO_STATUS_BLOCK's when it pended) and
/// the bytes returned.
fn raw_ioctl(h: &Raw, code: u32, input: &[u8], output: *mut c_void, out_len: u32) -> (i32, usize) {
    // SAFETY: the event, buffers and status block outlive the request (waited for below).
    unsafe {
        let event = CreateEventW(None, true, false, PCWSTR::null()).expect("CreateEventW");
        let mut iosb = IoStatusBlock {
            status: STATUS_PENDING as u32 as usize,
            information: 0,
        };
        let mut status = NtDeviceIoControlFile(
            h.0,
            event,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut iosb,
            code,
            if input.is_empty() {
                std::ptr::null()
            } else {
                input.as_ptr().cast()
            },
            input.len() as u32,
            output,
            out_len,
        );
        if status == STATUS_PENDING {
            windows::Win32::System::Threading::WaitForSingleObject(event, u32::MAX);
            status = iosb.status as u32 as i32;
        }
        let _ = CloseHandle(event);
        (status, iosb.information)
    }
}

/// Page-aligned memory for REGISTER_BRIDGE rings.
struct Pages(*mut c_void);
impl Pages {
    fn new(bytes: usize) -> Self {
        // SAFETY: fresh private allocation, freed in Drop.
        let p = unsafe { VirtualAlloc(None, bytes, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE) };
        assert!(!p.is_null(), "VirtualAlloc");
        Pages(p)
    }
}
impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: our allocation; no request references it any more.
        let _ = unsafe { VirtualFree(self.0, 0, MEM_RELEASE) };
    }
}

fn status_name(s: i32) -> String {
    let name = match s {
        STATUS_SUCCESS => "STATUS_SUCCESS",
        STATUS_INVALID_PARAMETER => "STATUS_INVALID_PARAMETER",
        STATUS_BUFFER_TOO_SMALL => "STATUS_BUFFER_TOO_SMALL",
        STATUS_INVALID_DEVICE_REQUEST => "STATUS_INVALID_DEVICE_REQUEST",
        STATUS_REVISION_MISMATCH => "STATUS_REVISION_MISMATCH",
        STATUS_INVALID_USER_BUFFER => "STATUS_INVALID_USER_BUFFER",
        STATUS_ACCESS_DENIED => "STATUS_ACCESS_DENIED",
        STATUS_DEVICE_BUSY => "STATUS_DEVICE_BUSY",
        STATUS_CANCELLED => "STATUS_CANCELLED",
        STATUS_PENDING => "STATUS_PENDING",
        _ => "",
    };
    format!("{name}({:#010x})", s as u32)
}

// ---- control: the IOCTL ABI against the loaded driver ------------------------------------

fn control(checks: &mut Checks) {
    let device = match ControlDevice::open() {
        Ok(d) => Arc::new(d),
        Err(e) => {
            checks.check("control device", false, format!("ControlDevice::open: {e}"));
            return;
        }
    };
    checks.check(
        "control device",
        true,
        format!("{CONTROL_PATH} opened by the daemon's ControlDevice::open"),
    );

    dacl(checks);

    // A fresh driver: muted, no owner, no bridge, no stream.
    match device.get_state() {
        Ok(s) => {
            checks.check(
                "GET_STATE fresh",
                s.hard_mute == 1
                    && s.bridge_registered == 0
                    && s.caller_is_owner == 0
                    && s.stream_running == 0,
                format!(
                    "hard_mute {} bridge {} owner {} running {} generation {}",
                    s.hard_mute,
                    s.bridge_registered,
                    s.caller_is_owner,
                    s.stream_running,
                    s.generation
                ),
            );
        }
        Err(e) => {
            checks.check("GET_STATE fresh", false, e);
            return;
        }
    }

    // Before any bridge bound an owner nobody may unmute; anyone may mute.
    let r = device.set_mute(false, ChangeSource::Cli);
    checks.check(
        "SET_MUTE unmute without owner refused",
        r.is_err(),
        format!("{r:?}"),
    );
    let r = device.set_mute(true, ChangeSource::Cli);
    checks.check("SET_MUTE mute without owner", r.is_ok(), format!("{r:?}"));

    malformed(checks);

    // The daemon's own registration: the request stays pending; the caller becomes owner.
    let bridge = match BridgeRegistration::register(device.clone()) {
        Ok(b) => b,
        Err(e) => {
            checks.check("REGISTER_BRIDGE pending", false, e);
            return;
        }
    };
    checks.check(
        "REGISTER_BRIDGE pending",
        bridge.is_pending(),
        "BridgeRegistration::register: ERROR_IO_PENDING, still pending",
    );
    let s = device.get_state();
    checks.check(
        "GET_STATE with bridge",
        matches!(&s, Ok(s) if s.bridge_registered == 1 && s.caller_is_owner == 1),
        format!("{s:?}"),
    );
    let before = s.map(|s| s.generation).unwrap_or(0);
    let r = device.set_mute(false, ChangeSource::Cli);
    let s = device.get_state();
    checks.check(
        "SET_MUTE unmute by owner",
        r.is_ok() && matches!(&s, Ok(s) if s.hard_mute == 0 && s.last_source == ChangeSource::Cli as u32 && s.generation == before + 1),
        format!("set_mute(false) = {r:?}; state hard_mute {:?} last_source {:?} generation {:?} (was {before})", s.as_ref().map(|s| s.hard_mute), s.as_ref().map(|s| s.last_source), s.as_ref().map(|s| s.generation)),
    );
    let r = device.set_mute(true, ChangeSource::Hotkey);
    let s = device.get_state();
    checks.check(
        "SET_MUTE mute by owner",
        r.is_ok() && matches!(&s, Ok(s) if s.hard_mute == 1 && s.last_source == ChangeSource::Hotkey as u32),
        format!("set_mute(true) = {r:?}; hard_mute {:?}", s.as_ref().map(|s| s.hard_mute)),
    );

    // A second bridge while one is registered: refused.
    match ControlDevice::open() {
        Ok(second) => {
            let r = BridgeRegistration::register(Arc::new(second));
            checks.check(
                "REGISTER_BRIDGE second refused",
                r.is_err(),
                format!("{:?}", r.as_ref().err()),
            );
        }
        Err(e) => {
            checks.check("REGISTER_BRIDGE second refused", false, e);
        }
    }

    // Dropping the registration cancels the request (CancelIoEx) and waits for completion.
    drop(bridge);
    let s = device.get_state();
    checks.check(
        "REGISTER_BRIDGE cancelled (CancelIoEx)",
        matches!(&s, Ok(s) if s.bridge_registered == 0),
        format!(
            "after CancelIoEx + completion: bridge_registered {:?}",
            s.as_ref().map(|s| s.bridge_registered)
        ),
    );
    let raw_cancel = cancel_status();
    checks.check(
        "REGISTER_BRIDGE cancel status",
        raw_cancel == Some(STATUS_CANCELLED),
        format!(
            "the cancelled request completed with {}",
            raw_cancel.map_or("no completion".into(), status_name)
        ),
    );

    // Process exit with the request pending, then a restarted "daemon" registers again.
    process_exit(checks, &device);

    // Last: a handle closed with the request pending. Windows sends IRP_MJ_CLEANUP (the
    // driver completes the request); Wine sends neither CLEANUP nor a cancel while the request
    // holds the file, so the registration stays until this process exits (`after-exit`).
    handle_closed(checks, &device);
}

/// Run after `control` exited: the request it left pending was cancelled by its exit.
fn after_exit(checks: &mut Checks) {
    match ControlDevice::open().map(|d| d.get_state()) {
        Ok(Ok(s)) => {
            checks.check(
                "bridge released after the probe exited",
                s.bridge_registered == 0,
                format!("bridge_registered {} (the request the exited process left pending was cancelled)", s.bridge_registered),
            );
        }
        Ok(Err(e)) | Err(e) => {
            checks.check("bridge released after the probe exited", false, e);
        }
    }
}

fn dacl(checks: &mut Checks) {
    let Ok(h) = open_raw(READ_CONTROL.0) else {
        checks.check("DACL", false, "open with READ_CONTROL failed");
        return;
    };
    // SAFETY: our handle; the descriptor and string are freed with LocalFree.
    unsafe {
        let mut sd = PSECURITY_DESCRIPTOR::default();
        let r = GetSecurityInfo(
            h.0,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            None,
            None,
            None,
            None,
            Some(&mut sd),
        );
        if r.is_err() {
            checks.check("DACL", false, format!("GetSecurityInfo: {r:?}"));
            return;
        }
        let mut text = PWSTR::null();
        let ok = ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut text,
            None,
        );
        let sddl = if ok.is_ok() {
            text.to_string().unwrap_or_default()
        } else {
            String::new()
        };
        let _ = LocalFree(Some(HLOCAL(text.0.cast())));
        let _ = LocalFree(Some(HLOCAL(sd.0)));
        // What the driver applies (model: security::CONTROL_DEVICE_SD).
        let expected = ["(A;;GA;;;SY)", "(A;;GA;;;BA)", "(A;;GRGW;;;IU)"];
        let all = expected.iter().all(|ace| sddl.contains(ace));
        if sddl.is_empty() {
            // Wine 8.0 keeps no security descriptor for device objects: ZwSetSecurityObject
            // succeeded in DriverEntry (the service started), but nothing can be read back.
            checks.note(
                "DACL",
                format!("Wine reports no DACL for the control device (GetSecurityInfo gave an empty descriptor); the driver applies {expected:?}, not verifiable under Wine"),
            );
        } else {
            checks.check(
                "DACL",
                sddl.starts_with("D:") && all,
                format!(
                    "Wine reports {sddl:?} for the control device; expected the ACEs {expected:?}"
                ),
            );
        }
    }
}

/// Malformed and truncated requests: each must complete with the NTSTATUS the model's
/// parser gives for the same bytes (and the value written next to it).
fn malformed(checks: &mut Checks) {
    let Ok(h) = open_raw(0) else {
        checks.check("malformed", false, "open failed");
        return;
    };
    let mut v2 = client::get_state();
    v2[0] = 2;
    let mut wrong_size = client::get_state();
    wrong_size[4] = 12;
    let mut bad_muted = client::set_mute(true, ChangeSource::Cli);
    bad_muted[8] = 2;
    let mut bad_source = client::set_mute(true, ChangeSource::Cli);
    bad_source[12] = 99;
    let mut three = client::register_bridge(RING_CHANNELS as u32);
    three[8] = 3;
    let unknown = ctl_code(FILE_DEVICE_UNKNOWN, 0x9ff, METHOD_BUFFERED, 0);
    let long = [0u8; 100];
    let bridge = client::register_bridge(RING_CHANNELS as u32);
    let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
    // (name, code, input, output bytes, expected)
    let cases: Vec<(&str, u32, Vec<u8>, usize, i32)> = vec![
        (
            "unknown code",
            unknown,
            client::get_state().to_vec(),
            104,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
        (
            "GET_STATE empty input",
            IOCTL_HARDMUTE_GET_STATE,
            vec![],
            104,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "GET_STATE truncated input",
            IOCTL_HARDMUTE_GET_STATE,
            client::get_state()[..4].to_vec(),
            104,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "GET_STATE long input",
            IOCTL_HARDMUTE_GET_STATE,
            [&client::get_state()[..], &[0; 4]].concat(),
            104,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "GET_STATE ABI v2",
            IOCTL_HARDMUTE_GET_STATE,
            v2.to_vec(),
            104,
            STATUS_REVISION_MISMATCH,
        ),
        (
            "GET_STATE wrong size field",
            IOCTL_HARDMUTE_GET_STATE,
            wrong_size.to_vec(),
            104,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "GET_STATE truncated output",
            IOCTL_HARDMUTE_GET_STATE,
            client::get_state().to_vec(),
            50,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "input over 64 bytes",
            IOCTL_HARDMUTE_SET_MUTE,
            long.to_vec(),
            16,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "SET_MUTE muted=2",
            IOCTL_HARDMUTE_SET_MUTE,
            bad_muted.to_vec(),
            16,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "SET_MUTE unknown source",
            IOCTL_HARDMUTE_SET_MUTE,
            bad_source.to_vec(),
            16,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "SET_MUTE truncated output",
            IOCTL_HARDMUTE_SET_MUTE,
            client::set_mute(true, ChangeSource::Cli).to_vec(),
            8,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "REGISTER_BRIDGE 3 channels",
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            three.to_vec(),
            g.bytes,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "REGISTER_BRIDGE no ring buffer",
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            bridge.to_vec(),
            0,
            STATUS_INVALID_USER_BUFFER,
        ),
        (
            "REGISTER_BRIDGE ring under 4 KiB",
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            bridge.to_vec(),
            1024,
            STATUS_INVALID_PARAMETER,
        ),
    ];
    for (name, code, input, out_len, expected) in cases {
        let pages = Pages::new(out_len.max(4096));
        if code == IOCTL_HARDMUTE_REGISTER_BRIDGE && out_len >= 4096 {
            // SAFETY: page-aligned, zeroed, at least a header long.
            init_header(unsafe { &*pages.0.cast::<RingHeader>() }, g);
        }
        let out = if out_len == 0 {
            std::ptr::null_mut()
        } else {
            pages.0
        };
        let (status, _) = raw_ioctl(&h, code, &input, out, out_len as u32);
        // The model's parser on the same bytes (the glue adds the 64-byte input limit).
        let direct = code & 3 == METHOD_OUT_DIRECT;
        let model = if input.len() > 64 {
            Err(STATUS_INVALID_PARAMETER)
        } else {
            parse_request(code, &input, out_len, direct && out_len > 0).map(|_| ())
        };
        checks.check(
            &format!("malformed {name}"),
            status == expected && model == Err(expected),
            format!(
                "driver {}, model {:?}, expected {}",
                status_name(status),
                model.map_err(status_name),
                status_name(expected)
            ),
        );
    }
    // A ring whose header was never initialised (zeroed memory) is refused by the driver's
    // SharedRing::attach, and the refusal leaves no owner or bridge behind.
    let pages = Pages::new(g.bytes);
    let (status, _) = raw_ioctl(
        &h,
        IOCTL_HARDMUTE_REGISTER_BRIDGE,
        &bridge,
        pages.0,
        g.bytes as u32,
    );
    checks.check(
        "malformed REGISTER_BRIDGE uninitialised ring",
        status == STATUS_INVALID_PARAMETER,
        format!("driver {}", status_name(status)),
    );
}

/// A raw REGISTER_BRIDGE cancelled with CancelIoEx: the completion status.
fn cancel_status() -> Option<i32> {
    let h = open_raw(0).ok()?;
    let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
    let pages = Pages::new(g.bytes);
    // SAFETY: page-aligned zeroed memory of g.bytes.
    init_header(unsafe { &*pages.0.cast::<RingHeader>() }, g);
    let input = client::register_bridge(RING_CHANNELS as u32);
    // SAFETY: the event, buffers and OVERLAPPED outlive the request (cancelled and waited).
    unsafe {
        let event = CreateEventW(None, true, false, PCWSTR::null()).ok()?;
        let mut ov = OVERLAPPED {
            hEvent: event,
            ..Default::default()
        };
        let r = DeviceIoControl(
            h.0,
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            Some(input.as_ptr().cast()),
            input.len() as u32,
            Some(pages.0),
            g.bytes as u32,
            None,
            Some(&mut ov),
        );
        let pending = matches!(&r, Err(e) if e.code() == ERROR_IO_PENDING.to_hresult());
        if pending {
            let _ = CancelIoEx(h.0, Some(&ov));
            let mut n = 0;
            let _ = GetOverlappedResult(h.0, &ov, &mut n, true);
        }
        let _ = CloseHandle(event);
        pending.then_some(ov.Internal as i32)
    }
}

/// Polls GET_STATE until the bridge is gone (at most `limit`).
fn wait_unregistered(device: &ControlDevice, limit: Duration) -> (bool, Duration) {
    let start = Instant::now();
    loop {
        if matches!(device.get_state(), Ok(s) if s.bridge_registered == 0) {
            return (true, start.elapsed());
        }
        if start.elapsed() > limit {
            return (false, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn handle_closed(checks: &mut Checks, device: &ControlDevice) {
    let h = match open_raw(0) {
        Ok(h) => h,
        Err(e) => {
            checks.check("REGISTER_BRIDGE released on handle close", false, e);
            return;
        }
    };
    let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
    let pages = Pages::new(g.bytes);
    // SAFETY: page-aligned zeroed memory of g.bytes.
    init_header(unsafe { &*pages.0.cast::<RingHeader>() }, g);
    let input = client::register_bridge(RING_CHANNELS as u32);
    // SAFETY: the OVERLAPPED is leaked on purpose: the request may still reference it after
    // the handle is closed (that is what is being checked); the ring pages are leaked too.
    let pending = unsafe {
        let event = CreateEventW(None, true, false, PCWSTR::null()).expect("CreateEventW");
        let ov = Box::leak(Box::new(OVERLAPPED {
            hEvent: event,
            ..Default::default()
        }));
        let r = DeviceIoControl(
            h.0,
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            Some(input.as_ptr().cast()),
            input.len() as u32,
            Some(pages.0),
            g.bytes as u32,
            None,
            Some(ov),
        );
        matches!(&r, Err(e) if e.code() == ERROR_IO_PENDING.to_hresult())
    };
    std::mem::forget(pages);
    drop(h);
    let (gone, after) = wait_unregistered(device, Duration::from_secs(2));
    checks.check(
        "REGISTER_BRIDGE pending before the handle close",
        pending,
        format!("pending {pending}"),
    );
    if gone {
        checks.check(
            "REGISTER_BRIDGE released on handle close",
            true,
            format!("after {after:?}"),
        );
    } else {
        checks.note(
            "REGISTER_BRIDGE on handle close",
            format!("still registered {after:?} after CloseHandle: Wine sends no IRP_MJ_CLEANUP (the driver's release path on Windows), and no cancel while the request holds the file"),
        );
    }
}

/// `hold-bridge`: a child that registers a bridge with the daemon's code, says so, and is
/// then terminated by the parent (process exit with the request pending).
fn hold_bridge() -> i32 {
    let device = match ControlDevice::open() {
        Ok(d) => Arc::new(d),
        Err(e) => {
            println!("hold-bridge: open failed: {e}");
            return 1;
        }
    };
    match BridgeRegistration::register(device) {
        Ok(b) => {
            println!("hold-bridge: registered");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(60));
            drop(b);
            0
        }
        Err(e) => {
            println!("hold-bridge: refused: {e}");
            1
        }
    }
}

fn process_exit(checks: &mut Checks, device: &ControlDevice) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().expect("current_exe");
    for round in 1..=2 {
        let mut child = match Command::new(&exe)
            .arg("hold-bridge")
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                checks.check("bridge process exit", false, format!("spawn: {e}"));
                return;
            }
        };
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        let registered = line.trim() == "hold-bridge: registered";
        let name = if round == 1 {
            "REGISTER_BRIDGE by a child process"
        } else {
            "REGISTER_BRIDGE again by a restarted process (daemon restart)"
        };
        checks.check(name, registered, line.trim());
        let _ = child.kill();
        let _ = child.wait();
        let (gone, after) = wait_unregistered(device, Duration::from_secs(3));
        checks.check(
            &format!("bridge released on process exit (round {round})"),
            gone,
            format!("TerminateProcess with the request pending: released {gone} after {after:?}"),
        );
    }
}

// ---- pnp: a root-enumerated device, as Wine's driver_pnp test installs one ---------------

/// The INF for the test device: the same service and image as the shipped driver, in the
/// System class (the shipped INF's `Include=ks.inf, wdmaudio.inf` does not resolve in Wine).
const TEST_INF: &str = "[Version]\r
Signature=\"$Chicago$\"\r
ClassGuid={4d36e97d-e325-11ce-bfc1-08002be10318}\r
Class=System\r
Provider=HardMute\r
DriverVer=01/01/2026,0.1.0.0\r
\r
[Manufacturer]\r
HardMute=hm,NTamd64\r
\r
[hm.NTamd64]\r
HardMute Microphone (wine test)=hm_device,root\\hardmute_winetest\r
\r
[hm_device.NTamd64]\r
\r
[hm_device.NTamd64.Services]\r
AddService=hardmute,0x2,hm_service\r
\r
[hm_service]\r
ServiceType=1\r
StartType=3\r
ErrorControl=1\r
ServiceBinary=%12%\\hardmute.sys\r
";
const HARDWARE_ID: &str = "root\\hardmute_winetest";

/// SetupAPI / newdev declared here (the windows crate's feature for them would rebuild it).
#[allow(clippy::upper_case_acronyms, non_snake_case)]
mod setupapi {
    use std::ffi::c_void;
    pub type HDEVINFO = isize;
    pub const DIF_REMOVE: u32 = 5;
    pub const DIF_REGISTERDEVICE: u32 = 0x19;
    pub const SPDRP_HARDWAREID: u32 = 1;
    pub const INSTALLFLAG_FORCE: u32 = 1;
    pub const ERROR_DEVINST_ALREADY_EXISTS: i32 = 0xE000_0207_u32 as i32;
    #[repr(C)]
    pub struct SpDevinfoData {
        pub cb_size: u32,
        pub class_guid: [u8; 16],
        pub dev_inst: u32,
        pub reserved: usize,
    }
    #[link(name = "setupapi")]
    unsafe extern "system" {
        pub fn SetupDiCreateDeviceInfoList(class: *const c_void, parent: *mut c_void) -> HDEVINFO;
        pub fn SetupDiCreateDeviceInfoW(
            set: HDEVINFO,
            name: *const u16,
            class: *const [u8; 16],
            description: *const u16,
            parent: *mut c_void,
            flags: u32,
            data: *mut SpDevinfoData,
        ) -> i32;
        pub fn SetupDiSetDeviceRegistryPropertyW(
            set: HDEVINFO,
            data: *mut SpDevinfoData,
            property: u32,
            buffer: *const u8,
            size: u32,
        ) -> i32;
        pub fn SetupDiCallClassInstaller(
            function: u32,
            set: HDEVINFO,
            data: *mut SpDevinfoData,
        ) -> i32;
        pub fn SetupDiDestroyDeviceInfoList(set: HDEVINFO) -> i32;
        pub fn SetupDiOpenDeviceInfoW(
            set: HDEVINFO,
            id: *const u16,
            parent: *mut c_void,
            flags: u32,
            data: *mut SpDevinfoData,
        ) -> i32;
    }
    #[link(name = "newdev")]
    unsafe extern "system" {
        pub fn UpdateDriverForPlugAndPlayDevicesW(
            parent: *mut c_void,
            hardware_id: *const u16,
            inf: *const u16,
            flags: u32,
            reboot: *mut i32,
        ) -> i32;
    }
}

fn wz(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

fn last_error() -> String {
    std::io::Error::last_os_error().to_string()
}

fn pnp(checks: &mut Checks, standin_log: &str) {
    use setupapi::*;
    let dir = std::env::temp_dir();
    let inf = dir.join("hardmute-winetest.inf");
    if let Err(e) = std::fs::write(&inf, TEST_INF) {
        checks.check(
            "pnp install",
            false,
            format!("writing {}: {e}", inf.display()),
        );
        return;
    }
    let hwid: Vec<u16> = HARDWARE_ID.encode_utf16().chain([0, 0]).collect();
    let inf_w = wz(&inf.to_string_lossy());
    // SAFETY: SetupAPI calls with owned, NUL-terminated buffers; the set is destroyed below.
    unsafe {
        let set = SetupDiCreateDeviceInfoList(std::ptr::null(), std::ptr::null_mut());
        if set == -1 {
            checks.check(
                "pnp install",
                false,
                format!("SetupDiCreateDeviceInfoList: {}", last_error()),
            );
            return;
        }
        let mut device = SpDevinfoData {
            cb_size: std::mem::size_of::<SpDevinfoData>() as u32,
            class_guid: [0; 16],
            dev_inst: 0,
            reserved: 0,
        };
        let null_guid = [0u8; 16];
        let mut steps = || -> Result<(), String> {
            let name = wz("root\\hardmute\\0");
            if SetupDiCreateDeviceInfoW(
                set,
                name.as_ptr(),
                &null_guid,
                std::ptr::null(),
                std::ptr::null_mut(),
                0,
                &mut device,
            ) == 0
            {
                // Left by an interrupted run: remove it and create it again.
                if std::io::Error::last_os_error().raw_os_error()
                    != Some(ERROR_DEVINST_ALREADY_EXISTS)
                    || SetupDiOpenDeviceInfoW(
                        set,
                        name.as_ptr(),
                        std::ptr::null_mut(),
                        0,
                        &mut device,
                    ) == 0
                    || SetupDiCallClassInstaller(DIF_REMOVE, set, &mut device) == 0
                    || SetupDiCreateDeviceInfoW(
                        set,
                        name.as_ptr(),
                        &null_guid,
                        std::ptr::null(),
                        std::ptr::null_mut(),
                        0,
                        &mut device,
                    ) == 0
                {
                    return Err(format!("SetupDiCreateDeviceInfoW: {}", last_error()));
                }
                println!("pnp: removed the device an earlier run left");
            }
            if SetupDiSetDeviceRegistryPropertyW(
                set,
                &mut device,
                SPDRP_HARDWAREID,
                hwid.as_ptr().cast(),
                (hwid.len() * 2) as u32,
            ) == 0
            {
                return Err(format!(
                    "SetupDiSetDeviceRegistryPropertyW(HARDWAREID): {}",
                    last_error()
                ));
            }
            if SetupDiCallClassInstaller(DIF_REGISTERDEVICE, set, &mut device) == 0 {
                return Err(format!(
                    "SetupDiCallClassInstaller(DIF_REGISTERDEVICE): {}",
                    last_error()
                ));
            }
            let mut reboot = 0;
            if UpdateDriverForPlugAndPlayDevicesW(
                std::ptr::null_mut(),
                wz(HARDWARE_ID).as_ptr(),
                inf_w.as_ptr(),
                INSTALLFLAG_FORCE,
                &mut reboot,
            ) == 0
            {
                return Err(format!(
                    "UpdateDriverForPlugAndPlayDevicesW: {}",
                    last_error()
                ));
            }
            Ok(())
        };
        let result = steps();
        let installed = result.is_ok();
        checks.check(
            "pnp install",
            installed,
            result.err().unwrap_or_else(|| "root device installed: PnP loaded the service, AddDevice -> PcAddAdapterDevice, IRP_MN_START_DEVICE -> StartDevice".into()),
        );
        if installed {
            // The bridge (daemon code) feeds a known signal while the stand-in runs its
            // streams; the stand-in's last stream checks it in the cyclic buffer.
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let bridge = {
                let stop = stop.clone();
                std::thread::spawn(move || crate::audio::bridge(&stop))
            };
            stream_results(checks, standin_log);
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            match bridge.join() {
                Ok(results) => {
                    for (ok, detail) in results {
                        checks.check("audio", ok, detail);
                    }
                }
                Err(_) => {
                    checks.check("audio", false, "the bridge thread panicked");
                }
            }
            hook_applied(checks, standin_log);
        }
        let removed = SetupDiCallClassInstaller(DIF_REMOVE, set, &mut device) != 0;
        checks.check(
            "pnp remove",
            removed,
            format!(
                "SetupDiCallClassInstaller(DIF_REMOVE): {}",
                if removed { "ok".into() } else { last_error() }
            ),
        );
        SetupDiDestroyDeviceInfoList(set);
    }
    stop_service(checks);
}

/// After the device is removed: the service is stopped (by the removal, or here) and deleted.
fn stop_service(checks: &mut Checks) {
    // SAFETY: plain SCM calls; handles closed below.
    unsafe {
        let Ok(scm) = OpenSCManagerW(PCWSTR::null(), PCWSTR::null(), SC_MANAGER_ALL_ACCESS) else {
            checks.check("pnp service stopped", false, "OpenSCManagerW failed");
            return;
        };
        match OpenServiceW(scm, &wide(SERVICE), SERVICE_ALL_ACCESS) {
            Ok(service) => {
                let mut st = SERVICE_STATUS::default();
                let _ = QueryServiceStatus(service, &mut st);
                let was = st.dwCurrentState.0;
                if st.dwCurrentState != SERVICE_STOPPED {
                    let _ = ControlService(service, SERVICE_CONTROL_STOP, &mut st);
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                while st.dwCurrentState != SERVICE_STOPPED && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    let _ = QueryServiceStatus(service, &mut st);
                }
                checks.check(
                    "pnp service stopped",
                    st.dwCurrentState == SERVICE_STOPPED,
                    format!(
                        "service state {was} after the removal, {} now (1 = STOPPED)",
                        st.dwCurrentState.0
                    ),
                );
                let _ = DeleteService(service);
                let _ = CloseServiceHandle(service);
            }
            Err(e) => {
                checks.check("pnp service stopped", false, format!("OpenServiceW: {e}"));
            }
        }
        let _ = CloseServiceHandle(scm);
    }
}

/// Waits (at most 90 s) for the stand-in's `stream test done` line and turns its
/// `stream ok`/`stream FAIL` lines into checks.
fn stream_results(checks: &mut Checks, standin_log: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let log = loop {
        let log = std::fs::read_to_string(standin_log).unwrap_or_default();
        if log.contains("stream test done") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !log.contains("stream test done") {
        checks.check(
            "stream test",
            false,
            "the stand-in did not finish its stream test within 90 s",
        );
    }
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("stream ok ") {
            checks.check("stream", true, rest);
        } else if let Some(rest) = line.strip_prefix("stream FAIL ") {
            checks.check("stream", false, rest);
        }
    }
}

/// The stand-in's `hook applied:` line (the bridge ring's MDL mapping replaced by the section).
fn hook_applied(checks: &mut Checks, standin_log: &str) {
    let log = std::fs::read_to_string(standin_log).unwrap_or_default();
    match log.lines().find_map(|l| l.strip_prefix("hook applied: ")) {
        Some(line) => {
            checks.check("audio hook", true, line);
        }
        None => {
            checks.check(
                "audio hook",
                false,
                "the stand-in never replaced REGISTER_BRIDGE's MDL mapping (no `hook applied:` line)",
            );
        }
    }
}

// ---- daemon: the real hardmuted.exe against the loaded driver -----------------------------

/// Polls GET_STATE until `want` holds (at most `limit`).
fn wait_state(
    device: &ControlDevice,
    limit: Duration,
    want: impl Fn(&hardmute_windows_model::ioctl::StateReply) -> bool,
) -> (bool, Duration) {
    let start = Instant::now();
    loop {
        if matches!(device.get_state(), Ok(s) if want(&s)) {
            return (true, start.elapsed());
        }
        if start.elapsed() > limit {
            return (false, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `hardmute.exe is-muted` until it reaches the daemon (exit 0 or 1) or `limit` passes.
fn wait_answering(cli: &str, limit: Duration) -> (bool, Duration) {
    use std::process::{Command, Stdio};
    let start = Instant::now();
    loop {
        let code = Command::new(cli)
            .arg("is-muted")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .and_then(|s| s.code());
        if matches!(code, Some(0 | 1)) {
            return (true, start.elapsed());
        }
        if start.elapsed() > limit {
            return (false, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// hardmuted.exe (its Windows backend: control device, WASAPI capture into the bridge ring)
/// started twice against the loaded driver, `hardmute.exe unmute`/`mute` through it, and its
/// process killed each time (the driver must drop its bridge).
fn daemon(checks: &mut Checks, hardmuted: &str, cli: &str) {
    use std::process::{Command, Stdio};
    let device = match ControlDevice::open() {
        Ok(d) => d,
        Err(e) => {
            checks.check("daemon", false, format!("ControlDevice::open: {e}"));
            return;
        }
    };
    let config = std::env::temp_dir().join("hardmute-daemon-test");
    let _ = std::fs::remove_dir_all(&config);
    for round in 1..=2 {
        let mut child = match Command::new(hardmuted)
            .arg("--config-dir")
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                checks.check("daemon start", false, format!("{hardmuted}: {e}"));
                return;
            }
        };
        let (registered, after) = wait_state(&device, Duration::from_secs(30), |s| {
            s.bridge_registered == 1
        });
        checks.check(
            &format!("hardmuted.exe registers its bridge (start {round})"),
            registered,
            format!("bridge_registered after {after:?}"),
        );
        // The backend registers its bridge before the IPC server listens, so the pipe may not
        // exist yet: wait until `is-muted` gets an answer (0 muted / 1 live; 3 = no daemon).
        let answering = if registered {
            wait_answering(cli, Duration::from_secs(30))
        } else {
            (false, Duration::ZERO)
        };
        if registered {
            checks.check(
                &format!("hardmuted.exe answers on its pipe (start {round})"),
                answering.0,
                format!("hardmute.exe is-muted answered after {:?}", answering.1),
            );
        }
        if registered && answering.0 {
            for (cmd, muted) in [("unmute", 0), ("mute", 1)] {
                let out = Command::new(cli).arg(cmd).stdout(Stdio::null()).status();
                let (ok, after) =
                    wait_state(&device, Duration::from_secs(10), |s| s.hard_mute == muted);
                checks.check(
                    &format!("hardmute.exe {cmd} through hardmuted.exe (start {round})"),
                    matches!(out, Ok(s) if s.success()) && ok,
                    format!("CLI {out:?}; driver hard_mute {muted} after {after:?}"),
                );
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let (gone, after) = wait_unregistered(&device, Duration::from_secs(5));
        checks.check(
            &format!("bridge released when hardmuted.exe is killed (start {round})"),
            gone,
            format!("released {gone} after {after:?}"),
        );
    }
}
