//! Capture endpoint enumeration (IMMDeviceEnumerator).

use crate::{AudioError, AudioResult, EndpointInfo};
use windows::core::{HSTRING, PWSTR};
use windows::Win32::Devices::FunctionDiscovery::PKEY_Device_FriendlyName;
use windows::Win32::Media::Audio::{
    eCapture, eConsole, IMMDevice, IMMDeviceEnumerator, MMDeviceEnumerator, DEVICE_STATE_ACTIVE,
};
use windows::Win32::System::Com::StructuredStorage::{PropVariantClear, PropVariantToStringAlloc};
use windows::Win32::System::Com::{CoCreateInstance, CoTaskMemFree, CLSCTX_ALL, STGM_READ};

pub(crate) fn enumerator() -> AudioResult<IMMDeviceEnumerator> {
    // SAFETY: creates a COM object on a thread that joined an apartment (callers hold a
    // ComApartment); the returned interface is reference counted by the windows crate.
    unsafe { CoCreateInstance(&MMDeviceEnumerator, None, CLSCTX_ALL) }
        .map_err(|e| AudioError::from_win("creating the MMDeviceEnumerator", e))
}

/// Copies and frees a COM-allocated wide string.
fn take_pwstr(p: PWSTR) -> String {
    // SAFETY: `p` is a NUL-terminated string the callee allocated with CoTaskMemAlloc; we read
    // it once and free it once.
    unsafe {
        let s = p.to_string().unwrap_or_default();
        CoTaskMemFree(Some(p.0 as *const _));
        s
    }
}

pub(crate) fn device_id(device: &IMMDevice) -> AudioResult<String> {
    // SAFETY: plain COM call; the string is taken over by take_pwstr.
    let id = unsafe { device.GetId() }.map_err(|e| AudioError::from_win("IMMDevice::GetId", e))?;
    Ok(take_pwstr(id))
}

pub(crate) fn friendly_name(device: &IMMDevice) -> AudioResult<String> {
    let ctx = "reading PKEY_Device_FriendlyName";
    // SAFETY: COM calls on a live device; the PROPVARIANT is cleared once after its string
    // was copied (PropVariantToStringAlloc allocates a separate copy, freed by take_pwstr).
    unsafe {
        let store = device
            .OpenPropertyStore(STGM_READ)
            .map_err(|e| AudioError::from_win(ctx, e))?;
        let mut value = store
            .GetValue(&PKEY_Device_FriendlyName)
            .map_err(|e| AudioError::from_win(ctx, e))?;
        let text = PropVariantToStringAlloc(&value).map(take_pwstr);
        let _ = PropVariantClear(&mut value);
        text.map_err(|e| AudioError::from_win(ctx, e))
    }
}

pub(crate) fn device_by_id(enumerator: &IMMDeviceEnumerator, id: &str) -> AudioResult<IMMDevice> {
    // SAFETY: the HSTRING outlives the call.
    unsafe { enumerator.GetDevice(&HSTRING::from(id)) }
        .map_err(|e| AudioError::from_win(format!("opening endpoint {id}"), e))
}

/// The default capture endpoint's id (console role), `None` when there is none.
pub(crate) fn default_capture_id(enumerator: &IMMDeviceEnumerator) -> Option<String> {
    // SAFETY: plain COM call; E_NOTFOUND (no capture device) is an answer, not an error here.
    let device = unsafe { enumerator.GetDefaultAudioEndpoint(eCapture, eConsole) }.ok()?;
    device_id(&device).ok()
}

/// Every active capture endpoint. The caller's thread must be in a COM apartment
/// ([`crate::ComApartment`]).
pub fn capture_endpoints() -> AudioResult<Vec<EndpointInfo>> {
    let enumerator = enumerator()?;
    let default = default_capture_id(&enumerator);
    // SAFETY: plain COM calls on live interfaces; indices are below GetCount.
    let collection = unsafe { enumerator.EnumAudioEndpoints(eCapture, DEVICE_STATE_ACTIVE) }
        .map_err(|e| AudioError::from_win("EnumAudioEndpoints(eCapture)", e))?;
    let count =
        unsafe { collection.GetCount() }.map_err(|e| AudioError::from_win("GetCount", e))?;
    let mut endpoints = Vec::with_capacity(count as usize);
    for i in 0..count {
        // SAFETY: i < count.
        let device = unsafe { collection.Item(i) }
            .map_err(|e| AudioError::from_win("IMMDeviceCollection::Item", e))?;
        let id = device_id(&device)?;
        // A device whose name cannot be read is still listed, under its id.
        let name = friendly_name(&device).unwrap_or_else(|_| id.clone());
        endpoints.push(EndpointInfo {
            is_default: default.as_deref() == Some(id.as_str()),
            id,
            name,
        });
    }
    Ok(endpoints)
}
