//! The `extern "C"` edge: the CFPlugIn factory and the AudioServerPlugInDriverInterface vtable.
//!
//! Each entry point checks the driver reference and object ids, turns raw pointers into safe Rust
//! (null and size checks here, once), and calls [`crate::plugin::Plugin`]. A panic cannot unwind
//! out of an `extern "C"` function (Rust aborts), and the release profile is panic = abort, so the
//! plug-in never unwinds into coreaudiod.

use crate::abi::*;
use crate::cf::{Cf, CoreFoundation};
use crate::consts::*;
use crate::model::*;
use crate::plugin::Plugin;
use core::ffi::c_void;
use core::sync::atomic::Ordering::*;

/// The one plug-in instance (coreaudiod loads the bundle once per process).
pub static PLUGIN: Plugin = Plugin::new();

static INTERFACE: AudioServerPlugInDriverInterface = AudioServerPlugInDriverInterface {
    _reserved: core::ptr::null_mut(),
    QueryInterface: query_interface,
    AddRef: add_ref,
    Release: release,
    Initialize: initialize,
    CreateDevice: create_device,
    DestroyDevice: destroy_device,
    AddDeviceClient: add_device_client,
    RemoveDeviceClient: remove_device_client,
    PerformDeviceConfigurationChange: perform_device_configuration_change,
    AbortDeviceConfigurationChange: abort_device_configuration_change,
    HasProperty: has_property,
    IsPropertySettable: is_property_settable,
    GetPropertyDataSize: get_property_data_size,
    GetPropertyData: get_property_data,
    SetPropertyData: set_property_data,
    StartIO: start_io,
    StopIO: stop_io,
    GetZeroTimeStamp: get_zero_time_stamp,
    WillDoIOOperation: will_do_io_operation,
    BeginIOOperation: begin_io_operation,
    DoIOOperation: do_io_operation,
    EndIOOperation: end_io_operation,
};

/// `AudioServerPlugInDriverRef` points at a pointer to the vtable.
#[allow(dead_code)] // read by the host, through the driver reference, never by Rust code
struct InterfacePtr(*const AudioServerPlugInDriverInterface);
// SAFETY: the pointer is to an immutable static; sharing it between threads is harmless.
unsafe impl Sync for InterfacePtr {}
static INTERFACE_PTR: InterfacePtr = InterfacePtr(&INTERFACE);

/// The driver reference handed to the host.
pub fn driver_ref() -> AudioServerPlugInDriverRef {
    &INTERFACE_PTR as *const InterfacePtr as AudioServerPlugInDriverRef
}

fn is_ours(driver: *mut c_void) -> bool {
    driver == driver_ref().cast::<c_void>()
}

/// The CFPlugIn factory named in Info.plist (CFPlugInFactories). Returns the driver reference, +1,
/// if the host asks for the AudioServerPlugIn type; null otherwise.
///
/// # Safety
/// `requested_type` must be null or a live CFUUID (the host passes kAudioServerPlugInTypeUUID).
#[no_mangle]
pub unsafe extern "C" fn AudioServerPlugIn_Factory(
    _allocator: CFTypeRef,
    requested_type: CFTypeRef,
) -> *mut c_void {
    // SAFETY: the host passes kAudioServerPlugInTypeUUID, a live CFUUID (caller contract).
    if unsafe { Cf::uuid_bytes(requested_type) } != Some(kAudioServerPlugInTypeUUID) {
        return core::ptr::null_mut();
    }
    // coreaudiod's first call into the plug-in: from here on `log::` records reach os_log.
    crate::oslog::install();
    PLUGIN.refs.fetch_add(1, AcqRel);
    driver_ref().cast()
}

unsafe extern "C" fn query_interface(
    driver: *mut c_void,
    uuid: CFUUIDBytes,
    out: *mut *mut c_void,
) -> HRESULT {
    if out.is_null() {
        return E_NOINTERFACE;
    }
    let known = uuid.bytes == IUnknownUUID || uuid.bytes == kAudioServerPlugInDriverInterfaceUUID;
    let result = if is_ours(driver) && known {
        PLUGIN.refs.fetch_add(1, AcqRel);
        driver
    } else {
        core::ptr::null_mut()
    };
    // SAFETY: `out` is non-null and points at the caller's LPVOID.
    unsafe { out.write(result) };
    if result.is_null() {
        E_NOINTERFACE
    } else {
        S_OK
    }
}

unsafe extern "C" fn add_ref(driver: *mut c_void) -> ULONG {
    if !is_ours(driver) {
        return 0;
    }
    PLUGIN.refs.fetch_add(1, AcqRel).saturating_add(1)
}

unsafe extern "C" fn release(driver: *mut c_void) -> ULONG {
    if !is_ours(driver) {
        return 0;
    }
    // The instance is static: the count only reports, it never frees.
    match PLUGIN
        .refs
        .fetch_update(AcqRel, Acquire, |n| n.checked_sub(1))
    {
        Ok(n) => n - 1,
        Err(_) => 0,
    }
}

unsafe extern "C" fn initialize(
    driver: AudioServerPlugInDriverRef,
    host: AudioServerPlugInHostRef,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    PLUGIN.initialize(host)
}

unsafe extern "C" fn create_device(
    _driver: AudioServerPlugInDriverRef,
    _description: CFTypeRef,
    _client: *const AudioServerPlugInClientInfo,
    _out_device: *mut AudioObjectID,
) -> OSStatus {
    kAudioHardwareUnsupportedOperationError
}

unsafe extern "C" fn destroy_device(
    _driver: AudioServerPlugInDriverRef,
    _device: AudioObjectID,
) -> OSStatus {
    kAudioHardwareUnsupportedOperationError
}

unsafe extern "C" fn add_device_client(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    info: *const AudioServerPlugInClientInfo,
) -> OSStatus {
    // SAFETY: the host passes a valid client info for the duration of the call (or null).
    match (is_ours(driver.cast()), unsafe { info.as_ref() }) {
        (true, Some(info)) => PLUGIN.add_client(device, info),
        (false, _) => kAudioHardwareBadObjectError,
        (true, None) => kAudioHardwareIllegalOperationError,
    }
}

unsafe extern "C" fn remove_device_client(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    info: *const AudioServerPlugInClientInfo,
) -> OSStatus {
    // SAFETY: as in add_device_client.
    match (is_ours(driver.cast()), unsafe { info.as_ref() }) {
        (true, Some(info)) => PLUGIN.remove_client(device, info),
        (false, _) => kAudioHardwareBadObjectError,
        (true, None) => kAudioHardwareIllegalOperationError,
    }
}

unsafe extern "C" fn perform_device_configuration_change(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    action: u64,
    _info: *mut c_void,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    PLUGIN.perform_change(device, action)
}

unsafe extern "C" fn abort_device_configuration_change(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    _action: u64,
    _info: *mut c_void,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    if device_index(device).is_none() {
        return kAudioHardwareBadDeviceError;
    }
    kAudioHardwareNoError
}

/// Borrow the address, or None.
///
/// # Safety
/// `addr` must be null or valid for the call.
unsafe fn address<'a>(
    addr: *const AudioObjectPropertyAddress,
) -> Option<&'a AudioObjectPropertyAddress> {
    // SAFETY: caller contract.
    unsafe { addr.as_ref() }
}

/// Borrow a caller buffer as bytes (empty if null or zero-sized).
///
/// # Safety
/// `ptr` must be null or valid for reads of `len` bytes for the call.
unsafe fn bytes<'a>(ptr: *const c_void, len: u32) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: caller contract.
    unsafe { core::slice::from_raw_parts(ptr.cast::<u8>(), len as usize) }
}

unsafe extern "C" fn has_property(
    driver: AudioServerPlugInDriverRef,
    object: AudioObjectID,
    _pid: PidT,
    addr: *const AudioObjectPropertyAddress,
) -> Boolean {
    // SAFETY: host-provided address, valid for the call.
    match (is_ours(driver.cast()), unsafe { address(addr) }) {
        (true, Some(a)) => u8::from(PLUGIN.has_property(object, a)),
        _ => 0,
    }
}

unsafe extern "C" fn is_property_settable(
    driver: AudioServerPlugInDriverRef,
    object: AudioObjectID,
    _pid: PidT,
    addr: *const AudioObjectPropertyAddress,
    out: *mut Boolean,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    // SAFETY: host-provided address, valid for the call.
    let Some(a) = (unsafe { address(addr) }) else {
        return kAudioHardwareIllegalOperationError;
    };
    if out.is_null() {
        return kAudioHardwareIllegalOperationError;
    }
    match PLUGIN.is_settable(object, a) {
        Ok(v) => {
            // SAFETY: non-null out-pointer from the host.
            unsafe { out.write(u8::from(v)) };
            kAudioHardwareNoError
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn get_property_data_size(
    driver: AudioServerPlugInDriverRef,
    object: AudioObjectID,
    _pid: PidT,
    addr: *const AudioObjectPropertyAddress,
    qualifier_size: u32,
    qualifier: *const c_void,
    out_size: *mut u32,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    // SAFETY: host-provided address and qualifier, valid for the call.
    let (Some(a), q) = (unsafe { address(addr) }, unsafe {
        bytes(qualifier, qualifier_size)
    }) else {
        return kAudioHardwareIllegalOperationError;
    };
    if out_size.is_null() {
        return kAudioHardwareIllegalOperationError;
    }
    // TranslateUIDToDevice's size does not depend on the qualifier.
    let value = if a.mSelector == kAudioPlugInPropertyTranslateUIDToDevice && object == PLUGIN_ID {
        Ok(Value::U32(0))
    } else {
        PLUGIN.get(object, a, q)
    };
    match value {
        Ok(v) => {
            // SAFETY: non-null out-pointer from the host.
            unsafe { out_size.write(v.size()) };
            kAudioHardwareNoError
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn get_property_data(
    driver: AudioServerPlugInDriverRef,
    object: AudioObjectID,
    _pid: PidT,
    addr: *const AudioObjectPropertyAddress,
    qualifier_size: u32,
    qualifier: *const c_void,
    data_size: u32,
    out_size: *mut u32,
    out: *mut c_void,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    // SAFETY: host-provided address and qualifier, valid for the call.
    let (Some(a), q) = (unsafe { address(addr) }, unsafe {
        bytes(qualifier, qualifier_size)
    }) else {
        return kAudioHardwareIllegalOperationError;
    };
    if out_size.is_null() || (out.is_null() && data_size > 0) {
        return kAudioHardwareIllegalOperationError;
    }
    let value = match PLUGIN.get(object, a, q) {
        Ok(v) => v,
        Err(e) => return e,
    };
    // SAFETY: the host's buffer `out` holds `data_size` bytes.
    match unsafe { value.write(out, data_size) } {
        Ok(n) => {
            // SAFETY: non-null out-pointer from the host.
            unsafe { out_size.write(n) };
            kAudioHardwareNoError
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn set_property_data(
    driver: AudioServerPlugInDriverRef,
    object: AudioObjectID,
    pid: PidT,
    addr: *const AudioObjectPropertyAddress,
    _qualifier_size: u32,
    _qualifier: *const c_void,
    data_size: u32,
    data: *const c_void,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    // SAFETY: host-provided address and data, valid for the call.
    let (Some(a), d) = (unsafe { address(addr) }, unsafe { bytes(data, data_size) }) else {
        return kAudioHardwareIllegalOperationError;
    };
    PLUGIN.set(object, pid, a, d)
}

unsafe extern "C" fn start_io(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    client: u32,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    PLUGIN.start_io(device, client)
}

unsafe extern "C" fn stop_io(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    client: u32,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    PLUGIN.stop_io(device, client)
}

unsafe extern "C" fn get_zero_time_stamp(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    _client: u32,
    out_sample_time: *mut f64,
    out_host_time: *mut u64,
    out_seed: *mut u64,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    if out_sample_time.is_null() || out_host_time.is_null() || out_seed.is_null() {
        return kAudioHardwareIllegalOperationError;
    }
    match PLUGIN.zero_time_stamp(device) {
        Ok((s, h, seed)) => {
            // SAFETY: non-null out-pointers from the host.
            unsafe {
                out_sample_time.write(s);
                out_host_time.write(h);
                out_seed.write(seed);
            }
            kAudioHardwareNoError
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn will_do_io_operation(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    _client: u32,
    operation: u32,
    out_will_do: *mut Boolean,
    out_in_place: *mut Boolean,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    match PLUGIN.will_do(device, operation) {
        Ok((will, in_place)) => {
            // SAFETY: out-pointers from the host, each written only when non-null.
            unsafe {
                if let Some(w) = out_will_do.as_mut() {
                    *w = u8::from(will);
                }
                if let Some(p) = out_in_place.as_mut() {
                    *p = u8::from(in_place);
                }
            }
            kAudioHardwareNoError
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn begin_io_operation(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    _client: u32,
    _operation: u32,
    _frames: u32,
    _cycle: *const AudioServerPlugInIOCycleInfo,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    if device_index(device).is_none() {
        return kAudioHardwareBadDeviceError;
    }
    kAudioHardwareNoError
}

unsafe extern "C" fn end_io_operation(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    client: u32,
    operation: u32,
    frames: u32,
    cycle: *const AudioServerPlugInIOCycleInfo,
) -> OSStatus {
    // SAFETY: same contract as begin.
    unsafe { begin_io_operation(driver, device, client, operation, frames, cycle) }
}

/// The realtime IO call. Fits on one screen: validate, view the host's buffer as f32 samples in
/// the stream's current format, hand it to the plug-in.
unsafe extern "C" fn do_io_operation(
    driver: AudioServerPlugInDriverRef,
    device: AudioObjectID,
    stream: AudioObjectID,
    _client: u32,
    operation: u32,
    frames: u32,
    _cycle: *const AudioServerPlugInIOCycleInfo,
    main_buffer: *mut c_void,
    _secondary_buffer: *mut c_void,
) -> OSStatus {
    if !is_ours(driver.cast()) {
        return kAudioHardwareBadObjectError;
    }
    let (Some(d), Some(s)) = (device_index(device), stream_index(stream)) else {
        return kAudioHardwareBadObjectError;
    };
    if d != s {
        return kAudioHardwareBadStreamError;
    }
    if main_buffer.is_null() {
        return kAudioHardwareIllegalOperationError;
    }
    let samples = frames as usize * PLUGIN.devices[d].channels() as usize;
    // SAFETY: the host's main buffer holds `frames` frames in the stream's current format (f32,
    // `channels` interleaved) — the format we reported; it is ours for the duration of the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(main_buffer.cast::<f32>(), samples) };
    match (device, operation) {
        (MIC_DEVICE_ID, kAudioServerPlugInIOOperationReadInput) => PLUGIN.read_input(buf),
        (FEED_DEVICE_ID, kAudioServerPlugInIOOperationWriteMix) => PLUGIN.write_mix(buf),
        _ => {}
    }
    kAudioHardwareNoError
}
