//! The owner record (Windows only): the user SID the driver serves, written as REG_BINARY
//! `OwnerSid` in the driver's service key before the driver is installed (it reads the record
//! once, when it loads). See `hardmute_windows_model::ioctl` for how the driver uses it.

use hardmute_install::{owner_key, wide, OWNER_VALUE};
use std::ptr::{null, null_mut};
use windows_sys::Win32::Foundation::{GetLastError, LocalFree};
use windows_sys::Win32::Security::Authorization::ConvertStringSidToSidW;
use windows_sys::Win32::Security::{GetLengthSid, IsValidSid, PSID};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE, KEY_SET_VALUE,
    REG_BINARY, REG_OPTION_NON_VOLATILE,
};

/// The user who runs this process (the one who started the setup, not an elevated admin).
pub fn current_user_sid() -> Result<String, String> {
    hardmute_ipc::transport::current_user_sid()
        .map_err(|e| format!("cannot read your user SID: {e}"))
}

/// Writes `sid` (string form, already checked by `is_user_sid`) as the driver's owner.
pub fn record_owner(sid: &str) -> Result<(), String> {
    let text = wide(sid);
    let mut binary: PSID = null_mut();
    // SAFETY: `text` is NUL-terminated UTF-16; `binary` is an out pointer freed below.
    if unsafe { ConvertStringSidToSidW(text.as_ptr(), &mut binary) } == 0 {
        // SAFETY: reads the calling thread's last-error value.
        return Err(format!("{sid:?} is not a SID: error {}", unsafe {
            GetLastError()
        }));
    }
    // SAFETY: `binary` is the valid SID ConvertStringSidToSidW allocated.
    let result = if unsafe { IsValidSid(binary) } == 0 {
        Err(format!("{sid:?} is not a valid SID"))
    } else {
        // SAFETY: as above; the length is that of the SID behind `binary`.
        let bytes = unsafe {
            std::slice::from_raw_parts(binary.cast::<u8>(), GetLengthSid(binary) as usize)
        };
        write_value(bytes)
    };
    // SAFETY: allocated by ConvertStringSidToSidW with LocalAlloc; freed once.
    unsafe { LocalFree(binary) };
    result
}

fn write_value(bytes: &[u8]) -> Result<(), String> {
    let key_name = wide(&owner_key());
    let mut key: HKEY = null_mut();
    // SAFETY: valid NUL-terminated names; `key` is an out pointer closed below. The service key
    // may not exist yet (the INF's AddService creates it and keeps this value).
    let status = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            key_name.as_ptr(),
            0,
            null(),
            REG_OPTION_NON_VOLATILE,
            KEY_SET_VALUE,
            null(),
            &mut key,
            null_mut(),
        )
    };
    if status != 0 {
        return Err(format!("cannot open HKLM\\{}: error {status}", owner_key()));
    }
    let value = wide(OWNER_VALUE);
    // SAFETY: `key` is open for KEY_SET_VALUE; `bytes` is readable for its length.
    let status = unsafe {
        RegSetValueExW(
            key,
            value.as_ptr(),
            0,
            REG_BINARY,
            bytes.as_ptr(),
            bytes.len() as u32,
        )
    };
    // SAFETY: opened above, closed once.
    unsafe { RegCloseKey(key) };
    if status != 0 {
        return Err(format!("cannot write {OWNER_VALUE}: error {status}"));
    }
    Ok(())
}
