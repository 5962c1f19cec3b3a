//! The CoreAudio side of the bridge (macOS only; type-checked and linked for the Apple targets on
//! Linux, run only on a Mac).
//!
//! - [`HardMute`]: finds the plug-in's devices by UID and reads/sets the `'hmut'` property through
//!   the HAL (the plug-in sees this process's pid and, from our embedded Info.plist, the bundle id
//!   `org.hardmute.daemon`; only that clears hard mute).
//! - [`Bridge`]: a HAL input AudioUnit on the physical mic and a HAL output AudioUnit on the hidden
//!   "HardMute Feed" device, joined by [`crate::pump`].
//! - [`input_devices`], [`input_processes`]: what `policy` decides from.
//! - [`DeviceWatcher`]: HAL property listeners on the default input, the device list and the
//!   captured device's liveness; they only OR bits into [`policy::HAL_SIGNALS`].

use crate::policy::{self, InputDevice, InputProcess, PropertyAddress};
use crate::pump::{pump, PumpConfig};
use core::ffi::c_void;
use core::ptr::NonNull;
use coreaudio::audio_unit::audio_format::LinearPcmFlags;
use coreaudio::audio_unit::macos_helpers::{audio_unit_from_device_id, get_device_name};
use coreaudio::audio_unit::render_callback::{self, data};
use coreaudio::audio_unit::{AudioUnit, Element, SampleFormat, Scope, StreamFormat};
use hardmute_core::bridge::HostClock;
use hardmute_core::level::{LevelReading, LevelTap};
use objc2_core_audio::{
    kAudioDevicePropertyDeviceIsAlive, kAudioDevicePropertyDeviceUID, kAudioDevicePropertyHogMode,
    kAudioDevicePropertyNominalSampleRate, kAudioDevicePropertyStreamConfiguration,
    kAudioHardwarePropertyDefaultInputDevice, kAudioHardwarePropertyDevices,
    kAudioHardwarePropertyProcessObjectList, kAudioHardwarePropertyTranslateUIDToDevice,
    kAudioObjectPropertyElementMain, kAudioObjectPropertyScopeGlobal,
    kAudioObjectPropertyScopeInput, kAudioObjectSystemObject, kAudioProcessPropertyBundleID,
    kAudioProcessPropertyDevices, kAudioProcessPropertyIsRunningInput, kAudioProcessPropertyPID,
    AudioObjectAddPropertyListener, AudioObjectGetPropertyData, AudioObjectGetPropertyDataSize,
    AudioObjectID, AudioObjectPropertyAddress, AudioObjectRemovePropertyListener,
    AudioObjectSetPropertyData,
};
use std::sync::Arc;

pub use hardmute_macos_contract::HARD_MUTE_SELECTOR;

#[derive(Debug)]
pub enum Error {
    /// An OSStatus from the HAL.
    Status(i32),
    /// The plug-in's device is not there (not installed, or coreaudiod not restarted).
    NoDevice(&'static str),
    NoInput,
    AudioUnit(coreaudio::Error),
}

impl From<coreaudio::Error> for Error {
    fn from(e: coreaudio::Error) -> Self {
        Error::AudioUnit(e)
    }
}

fn check(status: i32) -> Result<(), Error> {
    if status == 0 {
        Ok(())
    } else {
        Err(Error::Status(status))
    }
}

// ---- a few CoreFoundation calls --------------------------------------------------------------

type CFTypeRef = *const c_void;
#[link(name = "CoreFoundation", kind = "framework")]
extern "C" {
    static kCFBooleanTrue: CFTypeRef;
    static kCFBooleanFalse: CFTypeRef;
    fn CFRelease(cf: CFTypeRef);
    fn CFGetTypeID(cf: CFTypeRef) -> usize;
    fn CFBooleanGetTypeID() -> usize;
    fn CFBooleanGetValue(b: CFTypeRef) -> u8;
    fn CFStringCreateWithBytes(
        a: CFTypeRef,
        bytes: *const u8,
        n: isize,
        enc: u32,
        ext: u8,
    ) -> CFTypeRef;
    fn CFStringGetCString(s: CFTypeRef, buf: *mut u8, size: isize, enc: u32) -> u8;
}
const UTF8: u32 = 0x0800_0100;

/// An owned CF object.
struct Cf(CFTypeRef);
impl Drop for Cf {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we own one reference.
            unsafe { CFRelease(self.0) }
        }
    }
}
fn cf_string(s: &str) -> Cf {
    // SAFETY: valid UTF-8 bytes for the call; default allocator.
    Cf(
        unsafe {
            CFStringCreateWithBytes(core::ptr::null(), s.as_ptr(), s.len() as isize, UTF8, 0)
        },
    )
}
fn rust_string(s: CFTypeRef) -> String {
    let mut buf = [0u8; 512];
    // SAFETY: `s` is a live CFString; `buf` is writable for its length.
    if s.is_null()
        || unsafe { CFStringGetCString(s, buf.as_mut_ptr(), buf.len() as isize, UTF8) } == 0
    {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

// ---- HAL property helpers ----------------------------------------------------------------------

fn address(selector: u32, scope: u32) -> AudioObjectPropertyAddress {
    AudioObjectPropertyAddress {
        mSelector: selector,
        mScope: scope,
        mElement: kAudioObjectPropertyElementMain,
    }
}

/// Reads a fixed-size property.
fn get<T: Copy + Default>(
    object: AudioObjectID,
    selector: u32,
    scope: u32,
    qualifier: &[u8],
) -> Result<T, Error> {
    let mut value = T::default();
    let mut size = core::mem::size_of::<T>() as u32;
    let addr = address(selector, scope);
    // SAFETY: `value` is writable for `size` bytes; the address and qualifier live for the call.
    check(unsafe {
        AudioObjectGetPropertyData(
            object,
            NonNull::from(&addr),
            qualifier.len() as u32,
            qualifier.as_ptr().cast(),
            NonNull::from(&mut size),
            NonNull::from(&mut value).cast(),
        )
    })?;
    Ok(value)
}

/// Reads a list property of `T`s.
fn get_list<T: Copy + Default>(
    object: AudioObjectID,
    selector: u32,
    scope: u32,
) -> Result<Vec<T>, Error> {
    let addr = address(selector, scope);
    let mut size = 0u32;
    // SAFETY: out-pointer valid for the call.
    check(unsafe {
        AudioObjectGetPropertyDataSize(
            object,
            NonNull::from(&addr),
            0,
            core::ptr::null(),
            NonNull::from(&mut size),
        )
    })?;
    let mut items = vec![T::default(); size as usize / core::mem::size_of::<T>().max(1)];
    if items.is_empty() {
        return Ok(items);
    }
    // SAFETY: `items` is writable for `size` bytes.
    check(unsafe {
        AudioObjectGetPropertyData(
            object,
            NonNull::from(&addr),
            0,
            core::ptr::null(),
            NonNull::from(&mut size),
            NonNull::new_unchecked(items.as_mut_ptr()).cast(),
        )
    })?;
    items.truncate(size as usize / core::mem::size_of::<T>().max(1));
    Ok(items)
}

fn get_cf_string(object: AudioObjectID, selector: u32) -> Result<String, Error> {
    let r: usize = get(object, selector, kAudioObjectPropertyScopeGlobal, &[])?;
    let owned = Cf(r as CFTypeRef); // +1 from the HAL
    Ok(rust_string(owned.0))
}

fn device_by_uid(uid: &str) -> Result<AudioObjectID, Error> {
    let s = cf_string(uid);
    let q = (s.0 as usize).to_ne_bytes();
    let id: AudioObjectID = get(
        kAudioObjectSystemObject as AudioObjectID,
        kAudioHardwarePropertyTranslateUIDToDevice,
        kAudioObjectPropertyScopeGlobal,
        &q,
    )?;
    Ok(id)
}

// ---- hard mute ---------------------------------------------------------------------------------

/// The plug-in's devices as the HAL numbers them in this process.
#[derive(Clone, Copy, Debug)]
pub struct HardMute {
    pub mic: AudioObjectID,
    pub feed: AudioObjectID,
}

impl HardMute {
    pub fn find() -> Result<Self, Error> {
        let mic = device_by_uid(policy::MIC_UID)?;
        let feed = device_by_uid(policy::FEED_UID)?;
        if mic == 0 {
            return Err(Error::NoDevice("HardMute Microphone"));
        }
        if feed == 0 {
            return Err(Error::NoDevice("HardMute Feed"));
        }
        Ok(HardMute { mic, feed })
    }

    pub fn is_muted(&self) -> Result<bool, Error> {
        let r: usize = get(
            self.mic,
            HARD_MUTE_SELECTOR,
            kAudioObjectPropertyScopeGlobal,
            &[],
        )?;
        let v = Cf(r as CFTypeRef);
        // SAFETY: `v` is a live CF object returned +1 by the HAL; type checked before reading.
        let muted =
            unsafe { CFGetTypeID(v.0) == CFBooleanGetTypeID() && CFBooleanGetValue(v.0) != 0 };
        Ok(muted)
    }

    /// Whether some app runs IO on the HardMute Microphone now (the plug-in's count of StartIO
    /// calls, reported as kAudioDevicePropertyDeviceIsRunningSomewhere).
    pub fn is_running_somewhere(&self) -> Result<bool, Error> {
        let running: u32 = get(
            self.mic,
            policy::SELECTOR_DEVICE_IS_RUNNING_SOMEWHERE,
            kAudioObjectPropertyScopeGlobal,
            &[],
        )?;
        Ok(running != 0)
    }

    /// Sets hard mute. Clearing it works only from the daemon (the plug-in checks the caller).
    pub fn set_muted(&self, muted: bool) -> Result<(), Error> {
        // SAFETY: the CFBoolean constants are immortal.
        let value: CFTypeRef = unsafe {
            if muted {
                kCFBooleanTrue
            } else {
                kCFBooleanFalse
            }
        };
        let addr = address(HARD_MUTE_SELECTOR, kAudioObjectPropertyScopeGlobal);
        // SAFETY: the data is one CFPropertyListRef, as the custom property declares.
        check(unsafe {
            AudioObjectSetPropertyData(
                self.mic,
                NonNull::from(&addr),
                0,
                core::ptr::null(),
                core::mem::size_of::<CFTypeRef>() as u32,
                NonNull::from(&value).cast(),
            )
        })
    }
}

// ---- the guard: hog mode ----------------------------------------------------------------------

/// The pid holding hog mode (exclusive access) on `device`; -1 = nobody.
pub fn hog_mode_owner(device: AudioObjectID) -> Result<i32, Error> {
    get::<i32>(
        device,
        kAudioDevicePropertyHogMode,
        kAudioObjectPropertyScopeGlobal,
        &[],
    )
}

/// Toggles hog mode on `device` for this process and returns the owner after. The HAL ignores
/// the value written (nobody -> this process, this process -> nobody, another owner stays), so
/// callers read [`hog_mode_owner`] first (`backend_policy::hog_toggle_needed`).
pub fn toggle_hog_mode(device: AudioObjectID) -> Result<i32, Error> {
    let addr = address(kAudioDevicePropertyHogMode, kAudioObjectPropertyScopeGlobal);
    let pid: i32 = -1;
    // SAFETY: the data is one pid_t (i32), as the property declares; the address and the value
    // live for the call, which only reads them.
    check(unsafe {
        AudioObjectSetPropertyData(
            device,
            NonNull::from(&addr),
            0,
            core::ptr::null(),
            core::mem::size_of::<i32>() as u32,
            NonNull::from(&pid).cast(),
        )
    })?;
    hog_mode_owner(device)
}

// ---- devices and listeners ---------------------------------------------------------------------

fn has_input_channels(id: AudioObjectID) -> bool {
    let addr = address(
        kAudioDevicePropertyStreamConfiguration,
        kAudioObjectPropertyScopeInput,
    );
    let mut size = 0u32;
    // SAFETY: out-pointer valid for the call.
    let st = unsafe {
        AudioObjectGetPropertyDataSize(
            id,
            NonNull::from(&addr),
            0,
            core::ptr::null(),
            NonNull::from(&mut size),
        )
    };
    // An AudioBufferList with at least one buffer is larger than its 4-byte count + padding.
    st == 0 && size > 8
}

/// False once a device is going away (unplugged); unreadable counts as alive (the list decides).
fn is_alive(id: AudioObjectID) -> bool {
    get::<u32>(
        id,
        kAudioDevicePropertyDeviceIsAlive,
        kAudioObjectPropertyScopeGlobal,
        &[],
    )
    .map_or(true, |alive| alive != 0)
}

/// Every input device with its UID, and which one is the default.
pub fn input_devices() -> Result<Vec<InputDevice>, Error> {
    let system = kAudioObjectSystemObject as AudioObjectID;
    let default: AudioObjectID = get(
        system,
        kAudioHardwarePropertyDefaultInputDevice,
        kAudioObjectPropertyScopeGlobal,
        &[],
    )?;
    let ids: Vec<AudioObjectID> = get_list(
        system,
        kAudioHardwarePropertyDevices,
        kAudioObjectPropertyScopeGlobal,
    )?;
    Ok(ids
        .into_iter()
        .filter(|id| has_input_channels(*id) && is_alive(*id))
        .map(|id| InputDevice {
            id,
            uid: get_cf_string(id, kAudioDevicePropertyDeviceUID).unwrap_or_default(),
            name: get_device_name(id).unwrap_or_default(),
            is_default: id == default,
        })
        .collect())
}

/// Makes `device` the system's default input device (kAudioHardwarePropertyDefaultInputDevice;
/// macOS has no separate "system input", only a system *output*). Apps following the default
/// input move to it.
pub fn set_default_input(device: AudioObjectID) -> Result<(), Error> {
    let system = kAudioObjectSystemObject as AudioObjectID;
    let addr = address(
        kAudioHardwarePropertyDefaultInputDevice,
        kAudioObjectPropertyScopeGlobal,
    );
    // SAFETY: the property's data is one AudioObjectID; `device` lives for the call.
    check(unsafe {
        AudioObjectSetPropertyData(
            system,
            NonNull::from(&addr),
            0,
            core::ptr::null(),
            core::mem::size_of::<AudioObjectID>() as u32,
            NonNull::from(&device).cast(),
        )
    })
}

/// Processes running input (macOS 14+; earlier systems answer with an error).
pub fn input_processes() -> Result<Vec<InputProcess>, Error> {
    let system = kAudioObjectSystemObject as AudioObjectID;
    let procs: Vec<AudioObjectID> = get_list(
        system,
        kAudioHardwarePropertyProcessObjectList,
        kAudioObjectPropertyScopeGlobal,
    )?;
    let mut out = Vec::new();
    for p in procs {
        let running: u32 = get(
            p,
            kAudioProcessPropertyIsRunningInput,
            kAudioObjectPropertyScopeGlobal,
            &[],
        )?;
        if running == 0 {
            continue;
        }
        let pid: i32 = get(
            p,
            kAudioProcessPropertyPID,
            kAudioObjectPropertyScopeGlobal,
            &[],
        )?;
        let devices: Vec<AudioObjectID> = get_list(
            p,
            kAudioProcessPropertyDevices,
            kAudioObjectPropertyScopeInput,
        )?;
        out.push(InputProcess {
            pid,
            bundle_id: get_cf_string(p, kAudioProcessPropertyBundleID).unwrap_or_default(),
            device_uids: devices
                .into_iter()
                .map(|d| get_cf_string(d, kAudioDevicePropertyDeviceUID).unwrap_or_default())
                .collect(),
        })
    }
    Ok(out)
}

// ---- the bridge --------------------------------------------------------------------------------

/// Physical mic -> HardMute Feed, running while it exists.
pub struct Bridge {
    capture: AudioUnit,
    feed: AudioUnit,
    level: Arc<LevelTap>,
}

fn float_format(rate: f64, channels: u32) -> StreamFormat {
    StreamFormat {
        sample_rate: rate,
        sample_format: SampleFormat::F32,
        flags: LinearPcmFlags::IS_FLOAT | LinearPcmFlags::IS_PACKED,
        channels,
    }
}

/// The callback's host time as nanoseconds (one tick base for both callbacks).
fn host_clock(host_time: u64) -> HostClock {
    HostClock {
        // SAFETY: pure conversion function without preconditions.
        now: unsafe { objc2_core_audio::AudioConvertHostTimeToNanos(host_time) },
        ticks_per_second: 1_000_000_000,
    }
}

impl Bridge {
    /// Starts feeding `mic` (a physical input device id) into the plug-in's feed device. With
    /// `open_capture` false (release-on-mute while muted) only the feed runs (so the daemon stays
    /// a client of the plug-in) and the physical mic stays closed until [`Bridge::resume_capture`].
    pub fn start(
        mic: AudioObjectID,
        devices: &HardMute,
        open_capture: bool,
    ) -> Result<Self, Error> {
        let mic_rate: f64 = get(
            mic,
            kAudioDevicePropertyNominalSampleRate,
            kAudioObjectPropertyScopeGlobal,
            &[],
        )?;
        let feed_rate: f64 = get(
            devices.feed,
            kAudioDevicePropertyNominalSampleRate,
            kAudioObjectPropertyScopeGlobal,
            &[],
        )?;
        let (in_ch, out_ch) = (1u32, 2u32);
        let period = (feed_rate / 100.0) as usize; // the HAL's usual 10 ms IO buffer
        let (mut capture_side, mut feed_side) = pump(PumpConfig {
            in_rate: mic_rate as u32,
            in_channels: in_ch as usize,
            out_rate: feed_rate as u32,
            out_channels: out_ch as usize,
            out_period: period,
            target_fill_frames: 2 * period,
            capacity_frames: 16 * period,
        });

        let level = Arc::clone(capture_side.level_tap());
        let mut capture = audio_unit_from_device_id(mic, true)?;
        capture.set_stream_format(float_format(mic_rate, in_ch), Scope::Output, Element::Input)?;
        type In = render_callback::Args<data::Interleaved<f32>>;
        capture.set_input_callback(move |args: In| {
            capture_side.push(args.data.buffer, host_clock(args.time_stamp.mHostTime));
            Ok(())
        })?;

        let mut feed = audio_unit_from_device_id(devices.feed, false)?;
        feed.set_stream_format(
            float_format(feed_rate, out_ch),
            Scope::Input,
            Element::Output,
        )?;
        type Out = render_callback::Args<data::Interleaved<f32>>;
        feed.set_render_callback(move |args: Out| {
            feed_side.pull(args.data.buffer, host_clock(args.time_stamp.mHostTime).now);
            Ok(())
        })?;

        feed.start()?;
        if open_capture {
            capture.start()?;
        }
        Ok(Bridge {
            capture,
            feed,
            level,
        })
    }

    /// Releases the physical mic (release-on-mute); the feed keeps running and plays zeros.
    pub fn pause_capture(&mut self) -> Result<(), Error> {
        Ok(self.capture.stop()?)
    }

    pub fn resume_capture(&mut self) -> Result<(), Error> {
        Ok(self.capture.start()?)
    }

    /// The physical mic's level as captured (the room's, muted or not: the caller decides when
    /// it may be shown).
    pub fn captured_level(&self) -> LevelReading {
        self.level.read()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.capture.stop();
        let _ = self.feed.stop();
    }
}

// ---- following the default input and hot-plug ----------------------------------------------------

// The portable policy names the selectors and mirrors the address type; both must be the HAL's.
const _: () = {
    assert!(policy::SELECTOR_DEFAULT_INPUT == kAudioHardwarePropertyDefaultInputDevice);
    assert!(policy::SELECTOR_DEVICES == kAudioHardwarePropertyDevices);
    assert!(policy::SELECTOR_DEVICE_IS_ALIVE == kAudioDevicePropertyDeviceIsAlive);
    assert!(
        core::mem::size_of::<AudioObjectPropertyAddress>()
            == core::mem::size_of::<PropertyAddress>()
    );
    assert!(
        core::mem::align_of::<AudioObjectPropertyAddress>()
            == core::mem::align_of::<PropertyAddress>()
    );
    assert!(core::mem::offset_of!(AudioObjectPropertyAddress, mSelector) == 0);
    assert!(core::mem::offset_of!(AudioObjectPropertyAddress, mScope) == 4);
    assert!(core::mem::offset_of!(AudioObjectPropertyAddress, mElement) == 8);
};

/// The listener the HAL calls on its notification thread: signals, nothing else (no allocation,
/// lock, syscall or CF call; it cannot panic). No client data: the signals are a static.
unsafe extern "C-unwind" fn hal_listener(
    _object: AudioObjectID,
    count: u32,
    addresses: NonNull<AudioObjectPropertyAddress>,
    _client: *mut c_void,
) -> i32 {
    // SAFETY: same layout (asserted above); the HAL passes `count` addresses for the call.
    unsafe {
        policy::on_properties_changed(
            &policy::HAL_SIGNALS,
            count,
            addresses.as_ptr().cast::<PropertyAddress>(),
        )
    };
    0
}

fn listen(object: AudioObjectID, selector: u32) -> Result<(), Error> {
    let addr = address(selector, kAudioObjectPropertyScopeGlobal);
    // SAFETY: the address lives for the call (the HAL copies it); the listener is a plain
    // function with the HAL's signature and uses no client data.
    check(unsafe {
        AudioObjectAddPropertyListener(
            object,
            NonNull::from(&addr),
            Some(hal_listener),
            core::ptr::null_mut(),
        )
    })
}

fn unlisten(object: AudioObjectID, selector: u32) {
    let addr = address(selector, kAudioObjectPropertyScopeGlobal);
    // SAFETY: same listener and client data as registered; failure (already gone) is harmless.
    let _ = unsafe {
        AudioObjectRemovePropertyListener(
            object,
            NonNull::from(&addr),
            Some(hal_listener),
            core::ptr::null_mut(),
        )
    };
}

/// HAL property listeners for the daemon: the default input and the device list on the system
/// object, and the captured device's liveness. Events are read with [`DeviceWatcher::take_events`]
/// (bits of [`policy::hal_event`]); the decisions are the daemon's.
pub struct DeviceWatcher {
    captured: Option<AudioObjectID>,
    /// The HardMute Microphone, listened to for "running somewhere" (on-demand capture).
    mic: Option<AudioObjectID>,
}

impl DeviceWatcher {
    pub fn start() -> Result<Self, Error> {
        let system = kAudioObjectSystemObject as AudioObjectID;
        listen(system, kAudioHardwarePropertyDefaultInputDevice)?;
        if let Err(e) = listen(system, kAudioHardwarePropertyDevices) {
            unlisten(system, kAudioHardwarePropertyDefaultInputDevice);
            return Err(e);
        }
        // Whatever was signalled before we listened is not ours to act on.
        policy::HAL_SIGNALS.take();
        Ok(DeviceWatcher {
            captured: None,
            mic: None,
        })
    }

    /// Listens to "running somewhere" on the HardMute Microphone: apps starting or stopping
    /// recording it signal [`policy::hal_event::MIC_RUNNING`].
    pub fn watch_mic_running(&mut self, mic: AudioObjectID) -> Result<(), Error> {
        if self.mic == Some(mic) {
            return Ok(());
        }
        if let Some(old) = self.mic.take() {
            unlisten(old, policy::SELECTOR_DEVICE_IS_RUNNING_SOMEWHERE);
        }
        listen(mic, policy::SELECTOR_DEVICE_IS_RUNNING_SOMEWHERE)?;
        self.mic = Some(mic);
        Ok(())
    }

    /// Moves the liveness listener to the device now captured (`None` = none).
    pub fn watch_captured(&mut self, device: Option<AudioObjectID>) -> Result<(), Error> {
        if self.captured == device {
            return Ok(());
        }
        if let Some(old) = self.captured.take() {
            unlisten(old, kAudioDevicePropertyDeviceIsAlive);
        }
        if let Some(new) = device {
            listen(new, kAudioDevicePropertyDeviceIsAlive)?;
            self.captured = Some(new);
        }
        Ok(())
    }

    /// The events since the last call (0 = nothing changed).
    pub fn take_events(&self) -> u32 {
        policy::HAL_SIGNALS.take()
    }
}

impl Drop for DeviceWatcher {
    fn drop(&mut self) {
        let system = kAudioObjectSystemObject as AudioObjectID;
        unlisten(system, kAudioHardwarePropertyDefaultInputDevice);
        unlisten(system, kAudioHardwarePropertyDevices);
        if let Some(old) = self.captured.take() {
            unlisten(old, kAudioDevicePropertyDeviceIsAlive);
        }
        if let Some(mic) = self.mic.take() {
            unlisten(mic, policy::SELECTOR_DEVICE_IS_RUNNING_SOMEWHERE);
        }
    }
}
