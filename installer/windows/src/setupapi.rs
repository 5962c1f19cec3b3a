//! SetupAPI / newdev calls (Windows only).
//!
//! Install = the `devcon install` sequence: make a device info set for the MEDIA class,
//! create a device node with a generated ID, set its hardware ID, register it with
//! DIF_REGISTERDEVICE (now PnP knows a root-enumerated device), then
//! UpdateDriverForPlugAndPlayDevices installs our INF on every device with that ID.
//! Uninstall = enumerate MEDIA devices, remove those whose hardware ID is ours.

use hardmute_install::{has_our_hardware_id, multi_sz, wide};
use hardmute_windows_model::miniport::HARDWARE_ID;
use std::ptr::{null, null_mut};
use windows_sys::core::GUID;
use windows_sys::Win32::Devices::DeviceAndDriverInstallation::*;
use windows_sys::Win32::Foundation::{GetLastError, FALSE, INVALID_HANDLE_VALUE};

/// GUID_DEVCLASS_MEDIA {4d36e96c-e325-11ce-bfc1-08002be10318} (the INF's ClassGuid).
const GUID_DEVCLASS_MEDIA: GUID = GUID::from_u128(0x4d36e96c_e325_11ce_bfc1_08002be10318);

/// Closes a device info set on every path.
struct DevInfoSet(HDEVINFO);
impl Drop for DevInfoSet {
    fn drop(&mut self) {
        // SAFETY: a set returned by SetupDiCreateDeviceInfoList/GetClassDevs, destroyed once.
        unsafe { SetupDiDestroyDeviceInfoList(self.0) };
    }
}

fn last_error(what: &str) -> String {
    // SAFETY: reads the calling thread's last-error value.
    format!("{what} failed: error {}", unsafe { GetLastError() })
}

fn devinfo_data() -> SP_DEVINFO_DATA {
    // SAFETY: plain-data struct; cbSize is set as SetupAPI requires.
    let mut d: SP_DEVINFO_DATA = unsafe { std::mem::zeroed() };
    d.cbSize = std::mem::size_of::<SP_DEVINFO_DATA>() as u32;
    d
}

pub fn install(inf: &str) -> Result<String, String> {
    let inf_path = std::fs::canonicalize(inf).map_err(|e| format!("{inf}: {e}"))?;
    let inf_w = wide(&inf_path.to_string_lossy());
    let hwid = wide(HARDWARE_ID);
    if !device_exists()? {
        // SAFETY: valid class GUID; no parent window.
        let set = unsafe { SetupDiCreateDeviceInfoList(&GUID_DEVCLASS_MEDIA, null_mut()) };
        if set == INVALID_HANDLE_VALUE as HDEVINFO {
            return Err(last_error("SetupDiCreateDeviceInfoList"));
        }
        let set = DevInfoSet(set);
        let mut dev = devinfo_data();
        let class_name = wide("MEDIA");
        let desc = wide("HardMute Microphone");
        // SAFETY: valid set, NUL-terminated strings, out struct with cbSize.
        if unsafe {
            SetupDiCreateDeviceInfoW(
                set.0,
                class_name.as_ptr(),
                &GUID_DEVCLASS_MEDIA,
                desc.as_ptr(),
                null_mut(),
                DICD_GENERATE_ID,
                &mut dev,
            )
        } == FALSE
        {
            return Err(last_error("SetupDiCreateDeviceInfo"));
        }
        let ids = multi_sz(HARDWARE_ID);
        // SAFETY: `ids` is a REG_MULTI_SZ of the given byte length.
        if unsafe {
            SetupDiSetDeviceRegistryPropertyW(
                set.0,
                &mut dev,
                SPDRP_HARDWAREID,
                ids.as_ptr().cast(),
                (ids.len() * 2) as u32,
            )
        } == FALSE
        {
            return Err(last_error("SetupDiSetDeviceRegistryProperty(HARDWAREID)"));
        }
        // SAFETY: valid set and device.
        if unsafe { SetupDiCallClassInstaller(DIF_REGISTERDEVICE, set.0, &dev) } == FALSE {
            return Err(last_error("SetupDiCallClassInstaller(DIF_REGISTERDEVICE)"));
        }
    }
    let mut reboot = FALSE;
    // SAFETY: NUL-terminated hardware ID and INF path; out flag.
    if unsafe {
        UpdateDriverForPlugAndPlayDevicesW(
            null_mut(),
            hwid.as_ptr(),
            inf_w.as_ptr(),
            INSTALLFLAG_FORCE,
            &mut reboot,
        )
    } == FALSE
    {
        return Err(last_error("UpdateDriverForPlugAndPlayDevices"));
    }
    Ok(if reboot != FALSE {
        "installed; reboot required".into()
    } else {
        "installed".into()
    })
}

/// Calls `f` for every MEDIA-class device whose hardware ID list contains ours.
fn for_each_ours(
    mut f: impl FnMut(HDEVINFO, &SP_DEVINFO_DATA) -> Result<(), String>,
) -> Result<usize, String> {
    // SAFETY: valid class GUID; all devices of the class, present or not.
    let set = unsafe { SetupDiGetClassDevsW(&GUID_DEVCLASS_MEDIA, null(), null_mut(), 0) };
    if set == INVALID_HANDLE_VALUE as HDEVINFO {
        return Err(last_error("SetupDiGetClassDevs"));
    }
    let set = DevInfoSet(set);
    let mut found = 0;
    for index in 0.. {
        let mut dev = devinfo_data();
        // SAFETY: valid set; enumeration ends with FALSE (ERROR_NO_MORE_ITEMS).
        if unsafe { SetupDiEnumDeviceInfo(set.0, index, &mut dev) } == FALSE {
            break;
        }
        let mut buf = [0u16; 512];
        let mut needed = 0u32;
        // SAFETY: buffer and sizes are consistent (bytes).
        let ok = unsafe {
            SetupDiGetDeviceRegistryPropertyW(
                set.0,
                &dev,
                SPDRP_HARDWAREID,
                null_mut(),
                buf.as_mut_ptr().cast(),
                (buf.len() * 2) as u32,
                &mut needed,
            )
        };
        if ok != FALSE && has_our_hardware_id(&buf) {
            f(set.0, &dev)?;
            found += 1;
        }
    }
    Ok(found)
}

fn device_exists() -> Result<bool, String> {
    Ok(for_each_ours(|_, _| Ok(()))? > 0)
}

pub fn uninstall() -> Result<String, String> {
    let removed = for_each_ours(|set, dev| {
        let mut reboot = FALSE;
        // SAFETY: a device from `set`.
        if unsafe { DiUninstallDevice(null_mut(), set, dev, 0, &mut reboot) } == FALSE {
            return Err(last_error("DiUninstallDevice"));
        }
        Ok(())
    })?;
    Ok(format!("removed {removed} HardMute device node(s)"))
}
