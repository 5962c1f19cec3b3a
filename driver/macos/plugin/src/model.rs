//! The plug-in's objects and their properties (libASPL's shape: plugin -> devices -> streams, with
//! property dispatch kept apart from IO).
//!
//! Objects:
//! - 1 the plug-in (kAudioObjectPlugInObject);
//! - 2 "HardMute Microphone", an input device apps record from, with input stream 3;
//! - 4 "HardMute Feed", a hidden output device with output stream 5: the bridge in `hardmuted`
//!   plays the physical mic into it, and its WriteMix pushes the samples into the ring the
//!   microphone's ReadInput drains through the hard-mute gate.
//!
//! Why a hidden feed device and not shared memory: everything stays inside coreaudiod (no extra
//! IPC, no mach service to declare, nothing for the sandbox to refuse), both devices run on the
//! same host clock inside the plug-in (the ring sees no drift; the bridge alone corrects the
//! physical mic's drift), and the HAL already gives the bridge a realtime IO path. A separate
//! hidden device rather than an output stream on the microphone keeps the microphone out of the
//! system's output-device lists.
//!
//! Nothing in this module runs on the IO path; it may allocate and lock.

use crate::abi::*;
use crate::cf::{Cf, CoreFoundation, Owned};
use crate::consts::*;
use core::ffi::c_void;

pub const PLUGIN_ID: AudioObjectID = kAudioObjectPlugInObject;
pub const MIC_DEVICE_ID: AudioObjectID = 2;
pub const MIC_STREAM_ID: AudioObjectID = 3;
pub const FEED_DEVICE_ID: AudioObjectID = 4;
pub const FEED_STREAM_ID: AudioObjectID = 5;

// What hardmuted relies on (device UIDs and names, the 'hmut' property, the daemon's bundle id)
// is defined once, in the contract both sides import.
pub use hardmute_macos_contract::{
    DAEMON_BUNDLE_ID, FEED_NAME, FEED_UID, HARD_MUTE_SELECTOR, MANUFACTURER, MIC_NAME, MIC_UID,
    MODEL_UID,
};
/// Key under which the host's storage keeps the hard-mute state across restarts.
pub const STORAGE_KEY_HARD_MUTE: &str = "hard-mute";

pub const SAMPLE_RATES: [u32; 3] = [44_100, 48_000, 96_000];
pub const CHANNEL_COUNTS: [u32; 2] = [1, 2];
pub const DEFAULT_RATE: u32 = 48_000;
pub const DEFAULT_CHANNELS: u32 = 2;
/// Frames between successive zero time stamps.
pub const ZERO_TIMESTAMP_PERIOD: u32 = 16_384;
/// The ring between feed and microphone: half a second of stereo at the highest rate.
pub const RING_CAPACITY_SAMPLES: usize = 96_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

/// What a device is (static); its changing state is in `crate::plugin::DeviceState`.
#[derive(Debug)]
pub struct DeviceSpec {
    pub id: AudioObjectID,
    pub stream_id: AudioObjectID,
    pub direction: Direction,
    pub name: &'static str,
    pub uid: &'static str,
    pub hidden: bool,
}

pub const DEVICES: [DeviceSpec; 2] = [
    DeviceSpec {
        id: MIC_DEVICE_ID,
        stream_id: MIC_STREAM_ID,
        direction: Direction::Input,
        name: MIC_NAME,
        uid: MIC_UID,
        hidden: false,
    },
    DeviceSpec {
        id: FEED_DEVICE_ID,
        stream_id: FEED_STREAM_ID,
        direction: Direction::Output,
        name: FEED_NAME,
        uid: FEED_UID,
        hidden: true,
    },
];

pub fn device_index(id: AudioObjectID) -> Option<usize> {
    DEVICES.iter().position(|d| d.id == id)
}

pub fn stream_index(id: AudioObjectID) -> Option<usize> {
    DEVICES.iter().position(|d| d.stream_id == id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Plugin,
    Device(usize),
    Stream(usize),
}

pub fn object(id: AudioObjectID) -> Option<Object> {
    if id == PLUGIN_ID {
        Some(Object::Plugin)
    } else if let Some(i) = device_index(id) {
        Some(Object::Device(i))
    } else {
        stream_index(id).map(Object::Stream)
    }
}

const COMMON: &[AudioObjectPropertySelector] = &[
    kAudioObjectPropertyBaseClass,
    kAudioObjectPropertyClass,
    kAudioObjectPropertyOwner,
    kAudioObjectPropertyOwnedObjects,
    kAudioObjectPropertyCustomPropertyInfoList,
];
pub const PLUGIN_PROPERTIES: &[AudioObjectPropertySelector] = &[
    kAudioObjectPropertyManufacturer,
    kAudioPlugInPropertyDeviceList,
    kAudioPlugInPropertyTranslateUIDToDevice,
    kAudioPlugInPropertyResourceBundle,
];
pub const DEVICE_PROPERTIES: &[AudioObjectPropertySelector] = &[
    kAudioObjectPropertyName,
    kAudioObjectPropertyManufacturer,
    kAudioObjectPropertyControlList,
    kAudioDevicePropertyDeviceUID,
    kAudioDevicePropertyModelUID,
    kAudioDevicePropertyTransportType,
    kAudioDevicePropertyRelatedDevices,
    kAudioDevicePropertyClockDomain,
    kAudioDevicePropertyDeviceIsAlive,
    kAudioDevicePropertyDeviceIsRunning,
    kAudioDevicePropertyDeviceIsRunningSomewhere,
    kAudioDevicePropertyDeviceCanBeDefaultDevice,
    kAudioDevicePropertyDeviceCanBeDefaultSystemDevice,
    kAudioDevicePropertyLatency,
    kAudioDevicePropertyStreams,
    kAudioDevicePropertySafetyOffset,
    kAudioDevicePropertyNominalSampleRate,
    kAudioDevicePropertyAvailableNominalSampleRates,
    kAudioDevicePropertyIsHidden,
    kAudioDevicePropertyPreferredChannelsForStereo,
    kAudioDevicePropertyZeroTimeStampPeriod,
    kAudioDevicePropertyClockIsStable,
];
pub const STREAM_PROPERTIES: &[AudioObjectPropertySelector] = &[
    kAudioStreamPropertyIsActive,
    kAudioStreamPropertyDirection,
    kAudioStreamPropertyTerminalType,
    kAudioStreamPropertyStartingChannel,
    kAudioStreamPropertyLatency,
    kAudioStreamPropertyVirtualFormat,
    kAudioStreamPropertyPhysicalFormat,
    kAudioStreamPropertyAvailableVirtualFormats,
    kAudioStreamPropertyAvailablePhysicalFormats,
];

/// Every selector the object answers (for HasProperty and for tests that walk them all).
pub fn selectors(obj: Object) -> Vec<AudioObjectPropertySelector> {
    let mut v = COMMON.to_vec();
    match obj {
        Object::Plugin => v.extend_from_slice(PLUGIN_PROPERTIES),
        Object::Device(i) => {
            v.extend_from_slice(DEVICE_PROPERTIES);
            if DEVICES[i].id == MIC_DEVICE_ID {
                v.push(HARD_MUTE_SELECTOR);
            }
        }
        Object::Stream(_) => v.extend_from_slice(STREAM_PROPERTIES),
    }
    v
}

pub fn is_settable(obj: Object, selector: AudioObjectPropertySelector) -> bool {
    match obj {
        Object::Plugin => false,
        Object::Device(i) => {
            selector == kAudioDevicePropertyNominalSampleRate
                || (DEVICES[i].id == MIC_DEVICE_ID && selector == HARD_MUTE_SELECTOR)
        }
        Object::Stream(_) => {
            selector == kAudioStreamPropertyVirtualFormat
                || selector == kAudioStreamPropertyPhysicalFormat
        }
    }
}

/// f32 interleaved linear PCM at `rate` with `channels`.
pub fn float_format(rate: u32, channels: u32) -> AudioStreamBasicDescription {
    AudioStreamBasicDescription {
        mSampleRate: f64::from(rate),
        mFormatID: kAudioFormatLinearPCM,
        mFormatFlags: kAudioFormatFlagsNativeFloatPacked,
        mBytesPerPacket: 4 * channels,
        mFramesPerPacket: 1,
        mBytesPerFrame: 4 * channels,
        mChannelsPerFrame: channels,
        mBitsPerChannel: 32,
        mReserved: 0,
    }
}

/// The (rate, channels) of a format this device can run, or None.
pub fn supported_format(f: &AudioStreamBasicDescription) -> Option<(u32, u32)> {
    let rate = SAMPLE_RATES
        .iter()
        .copied()
        .find(|r| f64::from(*r) == f.mSampleRate)?;
    let ch = f.mChannelsPerFrame;
    (CHANNEL_COUNTS.contains(&ch) && *f == float_format(rate, ch)).then_some((rate, ch))
}

pub fn available_formats() -> Vec<AudioStreamRangedDescription> {
    let mut v = Vec::new();
    for &ch in &CHANNEL_COUNTS {
        for &rate in &SAMPLE_RATES {
            v.push(AudioStreamRangedDescription {
                mFormat: float_format(rate, ch),
                mSampleRateRange: AudioValueRange {
                    mMinimum: f64::from(rate),
                    mMaximum: f64::from(rate),
                },
            });
        }
    }
    v
}

/// A property value about to be copied out. Lists may be truncated to the caller's buffer (whole
/// elements); scalars must fit entirely.
#[derive(Debug)]
pub enum Value {
    U32(u32),
    F64(f64),
    /// A borrowed CF object; written out retained (+1), as the HAL expects.
    Cf(CFTypeRef),
    /// A CFBoolean, written out +1.
    Bool(bool),
    Asbd(AudioStreamBasicDescription),
    /// A fixed UInt32[2] (e.g. the preferred stereo channels): a scalar, must fit entirely.
    U32Pair([u32; 2]),
    Ids(Vec<AudioObjectID>),
    Ranges(Vec<AudioValueRange>),
    Formats(Vec<AudioStreamRangedDescription>),
    CustomInfo(Vec<AudioServerPlugInCustomPropertyInfo>),
}

fn bytes_of<T: Copy>(items: &[T]) -> &[u8] {
    // SAFETY: T is one of this crate's plain-old-data `#[repr(C)]` ABI types or an integer/float
    // (no padding is read by anyone as meaningful; the C side copies the same bytes).
    unsafe {
        core::slice::from_raw_parts(items.as_ptr().cast::<u8>(), core::mem::size_of_val(items))
    }
}

impl Value {
    /// The full size of the data (GetPropertyDataSize).
    pub fn size(&self) -> u32 {
        let bytes = match self {
            Value::U32(_) => 4,
            Value::F64(_) => 8,
            Value::Cf(_) | Value::Bool(_) => core::mem::size_of::<CFTypeRef>(),
            Value::Asbd(_) => core::mem::size_of::<AudioStreamBasicDescription>(),
            Value::U32Pair(_) => 8,
            Value::Ids(v) => core::mem::size_of_val(v.as_slice()),
            Value::Ranges(v) => core::mem::size_of_val(v.as_slice()),
            Value::Formats(v) => core::mem::size_of_val(v.as_slice()),
            Value::CustomInfo(v) => core::mem::size_of_val(v.as_slice()),
        };
        bytes as u32
    }

    /// Copies the value into `out` (capacity `capacity` bytes); returns the bytes written.
    ///
    /// # Safety
    /// `out` must be valid for writes of `capacity` bytes (suitably aligned for the value type, as
    /// the HAL guarantees).
    pub unsafe fn write(&self, out: *mut c_void, capacity: u32) -> Result<u32, OSStatus> {
        /// Writes one scalar if it fits entirely.
        ///
        /// # Safety
        /// `out` valid for `capacity` bytes.
        unsafe fn scalar<T>(out: *mut c_void, capacity: u32, v: T) -> Result<u32, OSStatus> {
            let size = core::mem::size_of::<T>() as u32;
            if capacity < size || out.is_null() {
                return Err(kAudioHardwareBadPropertySizeError);
            }
            // SAFETY: capacity >= size_of::<T>() and `out` is valid for `capacity` bytes (caller).
            unsafe { out.cast::<T>().write_unaligned(v) };
            Ok(size)
        }
        /// Copies the whole elements of a list that fit.
        ///
        /// # Safety
        /// `out` valid for `capacity` bytes.
        unsafe fn list<T: Copy>(
            out: *mut c_void,
            capacity: u32,
            items: &[T],
        ) -> Result<u32, OSStatus> {
            let bytes = bytes_of(items);
            let elem = core::mem::size_of::<T>();
            let n = bytes.len().min(capacity as usize / elem * elem);
            if n > 0 {
                // SAFETY: `n` <= capacity, and `out` is valid for `capacity` bytes (caller).
                unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), n) };
            }
            Ok(n as u32)
        }
        if let Value::Cf(_) | Value::Bool(_) = self {
            // Check the size before taking the +1 reference, so a short buffer leaks nothing.
            if (capacity as usize) < core::mem::size_of::<CFTypeRef>() || out.is_null() {
                return Err(kAudioHardwareBadPropertySizeError);
            }
        }
        // SAFETY (all arms): `out` is valid for `capacity` bytes (our caller's contract).
        unsafe {
            match self {
                Value::U32(v) => scalar(out, capacity, *v),
                Value::F64(v) => scalar(out, capacity, *v),
                // (the +1 the HAL expects; `r` is one of the plug-in's own live strings)
                Value::Cf(r) => scalar(out, capacity, Cf::retain(*r)),
                Value::Bool(b) => scalar(out, capacity, Cf::boolean(*b)),
                Value::Asbd(f) => scalar(out, capacity, *f),
                Value::U32Pair(p) => scalar(out, capacity, *p),
                Value::Ids(v) => list(out, capacity, v),
                Value::Ranges(v) => list(out, capacity, v),
                Value::Formats(v) => list(out, capacity, v),
                Value::CustomInfo(v) => list(out, capacity, v),
            }
        }
    }
}

/// The CF strings the plug-in hands out, created once at Initialize (never on the IO path).
pub struct Strings {
    pub manufacturer: Owned,
    pub resource_bundle: Owned,
    pub model_uid: Owned,
    pub names: [Owned; 2],
    pub uids: [Owned; 2],
    pub daemon_bundle_id: Owned,
    pub storage_key: Owned,
}

impl Strings {
    pub fn new() -> Self {
        Strings {
            manufacturer: Owned::string(MANUFACTURER),
            resource_bundle: Owned::string(""),
            model_uid: Owned::string(MODEL_UID),
            names: [
                Owned::string(DEVICES[0].name),
                Owned::string(DEVICES[1].name),
            ],
            uids: [Owned::string(DEVICES[0].uid), Owned::string(DEVICES[1].uid)],
            daemon_bundle_id: Owned::string(DAEMON_BUNDLE_ID),
            storage_key: Owned::string(STORAGE_KEY_HARD_MUTE),
        }
    }
}

impl Default for Strings {
    fn default() -> Self {
        Self::new()
    }
}
