//! The default capture endpoint, set for all three roles through `IPolicyConfig`.
//!
//! Windows has no documented API to change the default endpoint; the sound control panel,
//! EarTrumpet and SoundSwitch all use the undocumented `IPolicyConfig` interface of the
//! `PolicyConfigClient` class (`CPolicyConfigClient`), stable from Windows 7 to 11. It is kept
//! here, behind [`set_default_capture`] and [`default_capture_ids`], so nothing else touches it.
//! Only its `SetDefaultEndpoint` slot is called; the vtable's layout (13 slots before it: the
//! three of IUnknown and ten format/period/share-mode/property methods) is asserted at compile
//! time on every OS, and the type-check and link for Windows run in the cross-check rig.
//!
//! Wine 8/9's MMDevAPI registers only `MMDeviceEnumerator` (no `PolicyConfigClient` class), so
//! under wine [`set_default_capture`] fails with "class not registered": that clean refusal is
//! what the wine test checks; the interface itself runs only on real Windows (not verified here).

use core::ffi::c_void;
use core::mem::{offset_of, size_of};

/// CLSID_PolicyConfigClient {870AF99C-171D-4F9E-AF0D-E63DF40C2BC9}, as (data1, data2, data3, data4).
pub const CLSID_POLICY_CONFIG_CLIENT: (u32, u16, u16, [u8; 8]) = (
    0x870a_f99c,
    0x171d,
    0x4f9e,
    [0xaf, 0x0d, 0xe6, 0x3d, 0xf4, 0x0c, 0x2b, 0xc9],
);
/// IID_IPolicyConfig (Windows 7 and later) {F8679F50-850A-41CF-9C72-430F290290C8}.
pub const IID_IPOLICY_CONFIG: (u32, u16, u16, [u8; 8]) = (
    0xf867_9f50,
    0x850a,
    0x41cf,
    [0x9c, 0x72, 0x43, 0x0f, 0x29, 0x02, 0x90, 0xc8],
);

/// A slot this crate never calls (only its size matters).
type Unused = *const c_void;

/// `IPolicyConfig`'s vtable as the class implements it.
#[repr(C)]
pub struct PolicyConfigVtbl {
    pub query_interface:
        unsafe extern "system" fn(*mut c_void, *const [u8; 16], *mut *mut c_void) -> i32,
    pub add_ref: unsafe extern "system" fn(*mut c_void) -> u32,
    pub release: unsafe extern "system" fn(*mut c_void) -> u32,
    pub get_mix_format: Unused,
    pub get_device_format: Unused,
    pub reset_device_format: Unused,
    pub set_device_format: Unused,
    pub get_processing_period: Unused,
    pub set_processing_period: Unused,
    pub get_share_mode: Unused,
    pub set_share_mode: Unused,
    pub get_property_value: Unused,
    pub set_property_value: Unused,
    /// `HRESULT SetDefaultEndpoint(PCWSTR endpoint_id, ERole role)`.
    pub set_default_endpoint: unsafe extern "system" fn(*mut c_void, *const u16, i32) -> i32,
    pub set_endpoint_visibility: Unused,
}

const _: () = {
    let slot = size_of::<usize>();
    assert!(offset_of!(PolicyConfigVtbl, query_interface) == 0);
    assert!(offset_of!(PolicyConfigVtbl, release) == 2 * slot);
    assert!(offset_of!(PolicyConfigVtbl, set_default_endpoint) == 13 * slot);
    assert!(offset_of!(PolicyConfigVtbl, set_endpoint_visibility) == 14 * slot);
    assert!(size_of::<PolicyConfigVtbl>() == 15 * slot);
};

/// `ERole` values: eConsole, eMultimedia, eCommunications (every role an app can follow).
pub const ALL_ROLES: [i32; 3] = [0, 1, 2];

/// The default every app sees, from the default capture endpoint of each role (console,
/// multimedia, communications): HardMute only if it holds all three; otherwise the first role's
/// endpoint that is not HardMute (apps following that role are not protected).
pub fn effective_default(per_role: &[Option<String>; 3], hardmute_id: &str) -> Option<String> {
    per_role
        .iter()
        .find(|id| id.as_deref() != Some(hardmute_id))
        .cloned()
        .unwrap_or_else(|| Some(hardmute_id.to_owned()))
}

#[cfg(windows)]
mod imp {
    use super::*;
    use crate::devices::{device_id, enumerator};
    use crate::{AudioError, AudioResult};
    use windows::core::{Interface, GUID, HSTRING};
    use windows::Win32::Media::Audio::{eCapture, ERole};
    use windows::Win32::System::Com::{CoCreateInstance, CLSCTX_ALL};

    fn guid((d1, d2, d3, d4): (u32, u16, u16, [u8; 8])) -> GUID {
        GUID::from_values(d1, d2, d3, d4)
    }

    /// An `IPolicyConfig` pointer, released on drop.
    struct PolicyConfig(*mut c_void);

    impl PolicyConfig {
        fn create() -> AudioResult<Self> {
            let ctx = "creating PolicyConfigClient (IPolicyConfig, undocumented)";
            // SAFETY: creates a COM object on a thread in an apartment (callers hold a
            // ComApartment); the IUnknown is reference counted by the windows crate.
            let unknown: windows::core::IUnknown =
                unsafe { CoCreateInstance(&guid(CLSID_POLICY_CONFIG_CLIENT), None, CLSCTX_ALL) }
                    .map_err(|e| AudioError::from_win(ctx, e))?;
            let mut raw = core::ptr::null_mut();
            // SAFETY: QueryInterface with a valid IID and out-pointer; on success `raw` holds
            // one reference we own (released in Drop).
            unsafe { unknown.query(&guid(IID_IPOLICY_CONFIG), &mut raw) }
                .ok()
                .map_err(|e| AudioError::from_win(ctx, e))?;
            if raw.is_null() {
                return Err(AudioError::new(
                    ctx,
                    -1,
                    "QueryInterface returned no interface",
                ));
            }
            Ok(PolicyConfig(raw))
        }

        fn vtbl(&self) -> &PolicyConfigVtbl {
            // SAFETY: a COM interface pointer points at its vtable pointer; the layout of
            // IPolicyConfig's vtable is asserted above.
            unsafe { &**(self.0 as *const *const PolicyConfigVtbl) }
        }
    }

    impl Drop for PolicyConfig {
        fn drop(&mut self) {
            // SAFETY: releases the one reference QueryInterface gave us.
            unsafe { (self.vtbl().release)(self.0) };
        }
    }

    /// Makes `endpoint_id` the default capture endpoint for every role. The caller's thread
    /// must be in a COM apartment ([`crate::ComApartment`]).
    pub fn set_default_capture(endpoint_id: &str) -> AudioResult<()> {
        let config = PolicyConfig::create()?;
        let id = HSTRING::from(endpoint_id);
        for role in ALL_ROLES {
            // SAFETY: the vtable slot's signature is SetDefaultEndpoint(PCWSTR, ERole); the
            // wide string outlives the call.
            let hr = unsafe { (config.vtbl().set_default_endpoint)(config.0, id.as_ptr(), role) };
            windows::core::HRESULT(hr).ok().map_err(|e| {
                AudioError::from_win(format!("IPolicyConfig::SetDefaultEndpoint(role {role})"), e)
            })?;
        }
        Ok(())
    }

    /// The default capture endpoint's id for each role (console, multimedia, communications).
    pub fn default_capture_ids() -> AudioResult<[Option<String>; 3]> {
        let enumerator = enumerator()?;
        Ok(ALL_ROLES.map(|role| {
            // SAFETY: plain COM call; E_NOTFOUND (no capture device) means none.
            unsafe { enumerator.GetDefaultAudioEndpoint(eCapture, ERole(role)) }
                .ok()
                .and_then(|d| device_id(&d).ok())
        }))
    }

    /// The HardMute Microphone's endpoint id (its friendly name carries `marker`), if installed.
    pub fn endpoint_named(marker: &str) -> AudioResult<Option<String>> {
        Ok(crate::devices::capture_endpoints()?
            .into_iter()
            .find(|e| e.name.to_lowercase().contains(marker))
            .map(|e| e.id))
    }
}

#[cfg(windows)]
pub use imp::{default_capture_ids, endpoint_named, set_default_capture};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_hardmute_only_when_it_holds_every_role() {
        let hm = "{0.0.1.00000000}.{hm}";
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            effective_default(&[s(hm), s(hm), s(hm)], hm).as_deref(),
            Some(hm)
        );
        // Teams follows the communications role: a USB headset there is not protected.
        assert_eq!(
            effective_default(&[s(hm), s(hm), s("{usb}")], hm).as_deref(),
            Some("{usb}")
        );
        assert_eq!(effective_default(&[None, s(hm), s(hm)], hm), None);
    }

    #[test]
    fn guids_are_the_documented_strings() {
        let fmt = |(a, b, c, d): (u32, u16, u16, [u8; 8])| {
            format!(
                "{a:08x}-{b:04x}-{c:04x}-{:02x}{:02x}-{}",
                d[0],
                d[1],
                d[2..]
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
            )
        };
        assert_eq!(
            fmt(CLSID_POLICY_CONFIG_CLIENT),
            "870af99c-171d-4f9e-af0d-e63df40c2bc9"
        );
        assert_eq!(
            fmt(IID_IPOLICY_CONFIG),
            "f8679f50-850a-41cf-9c72-430f290290c8"
        );
    }
}
