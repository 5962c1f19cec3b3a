//! The AudioServerPlugIn ABI, hand-written from `<CoreAudio/AudioServerPlugIn.h>` (and the CoreAudio
//! base types it uses), because no Rust crate binds the plug-in vtables.
//!
//! Field order follows the header text exactly; every struct that crosses the ABI has compile-time
//! size and offset assertions for the 64-bit Apple targets (LP64: pointers 8 bytes, Float64/UInt64
//! 8-byte aligned on both arm64 and x86_64). The assertions are checked on every target the crate
//! builds for, including Linux, because LP64 layout rules are the same there.

use core::ffi::c_void;
use core::mem::{offset_of, size_of};

pub type OSStatus = i32;
pub type HRESULT = i32;
pub type ULONG = u32;
/// MacTypes.h `Boolean` is an unsigned char, not C99 `bool`.
pub type Boolean = u8;
pub type PidT = i32;
pub type AudioObjectID = u32;
pub type AudioObjectPropertySelector = u32;
pub type AudioObjectPropertyScope = u32;
pub type AudioObjectPropertyElement = u32;
/// Any CoreFoundation object reference (CFStringRef, CFUUIDRef, CFPropertyListRef, ...).
pub type CFTypeRef = *const c_void;

/// `CFUUIDBytes`: REFIID is this struct passed by value (CFPlugInCOM.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CFUUIDBytes {
    pub bytes: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioObjectPropertyAddress {
    pub mSelector: AudioObjectPropertySelector,
    pub mScope: AudioObjectPropertyScope,
    pub mElement: AudioObjectPropertyElement,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SMPTETime {
    pub mSubframes: i16,
    pub mSubframeDivisor: i16,
    pub mCounter: u32,
    pub mType: u32,
    pub mFlags: u32,
    pub mHours: i16,
    pub mMinutes: i16,
    pub mSeconds: i16,
    pub mFrames: i16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AudioTimeStamp {
    pub mSampleTime: f64,
    pub mHostTime: u64,
    pub mRateScalar: f64,
    pub mWordClockTime: u64,
    pub mSMPTETime: SMPTETime,
    pub mFlags: u32,
    pub mReserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AudioStreamBasicDescription {
    pub mSampleRate: f64,
    pub mFormatID: u32,
    pub mFormatFlags: u32,
    pub mBytesPerPacket: u32,
    pub mFramesPerPacket: u32,
    pub mBytesPerFrame: u32,
    pub mChannelsPerFrame: u32,
    pub mBitsPerChannel: u32,
    pub mReserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AudioValueRange {
    pub mMinimum: f64,
    pub mMaximum: f64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AudioStreamRangedDescription {
    pub mFormat: AudioStreamBasicDescription,
    pub mSampleRateRange: AudioValueRange,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioServerPlugInCustomPropertyInfo {
    pub mSelector: AudioObjectPropertySelector,
    pub mPropertyDataType: u32,
    pub mQualifierDataType: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AudioServerPlugInClientInfo {
    pub mClientID: u32,
    pub mProcessID: PidT,
    pub mIsNativeEndian: Boolean,
    /// Nullable; valid only for the duration of the call (retain to keep).
    pub mBundleID: CFTypeRef,
}

/// The header's `mMainHostTicksPerFrame` is a union with the deprecated `mMasterHostTicksPerFrame`
/// (both Float64): one `f64` has the same layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AudioServerPlugInIOCycleInfo {
    pub mIOCycleCounter: u64,
    pub mNominalIOBufferFrameSize: u32,
    pub mCurrentTime: AudioTimeStamp,
    pub mInputTime: AudioTimeStamp,
    pub mOutputTime: AudioTimeStamp,
    pub mMainHostTicksPerFrame: f64,
    pub mDeviceHostTicksPerFrame: f64,
}

/// `AudioServerPlugInHostRef` is `const AudioServerPlugInHostInterface*`.
pub type AudioServerPlugInHostRef = *const AudioServerPlugInHostInterface;
/// `AudioServerPlugInDriverRef` is `AudioServerPlugInDriverInterface**`.
pub type AudioServerPlugInDriverRef = *mut *const AudioServerPlugInDriverInterface;

#[repr(C)]
pub struct AudioServerPlugInHostInterface {
    pub PropertiesChanged: Option<
        unsafe extern "C" fn(
            AudioServerPlugInHostRef,
            AudioObjectID,
            u32,
            *const AudioObjectPropertyAddress,
        ) -> OSStatus,
    >,
    pub CopyFromStorage: Option<
        unsafe extern "C" fn(AudioServerPlugInHostRef, CFTypeRef, *mut CFTypeRef) -> OSStatus,
    >,
    pub WriteToStorage:
        Option<unsafe extern "C" fn(AudioServerPlugInHostRef, CFTypeRef, CFTypeRef) -> OSStatus>,
    pub DeleteFromStorage:
        Option<unsafe extern "C" fn(AudioServerPlugInHostRef, CFTypeRef) -> OSStatus>,
    pub RequestDeviceConfigurationChange: Option<
        unsafe extern "C" fn(AudioServerPlugInHostRef, AudioObjectID, u64, *mut c_void) -> OSStatus,
    >,
}

// SAFETY: the vtable is immutable after construction (function pointers plus a reserved pointer
// that is always null), so sharing one static table between the host's threads is sound.
unsafe impl Sync for AudioServerPlugInDriverInterface {}

type Drv = AudioServerPlugInDriverRef;
type Addr = *const AudioObjectPropertyAddress;
type Cycle = *const AudioServerPlugInIOCycleInfo;

/// The plug-in's vtable (a CFPlugIn IUnknown subclass). The host calls these function pointers.
#[repr(C)]
pub struct AudioServerPlugInDriverInterface {
    pub _reserved: *mut c_void,
    pub QueryInterface: unsafe extern "C" fn(*mut c_void, CFUUIDBytes, *mut *mut c_void) -> HRESULT,
    pub AddRef: unsafe extern "C" fn(*mut c_void) -> ULONG,
    pub Release: unsafe extern "C" fn(*mut c_void) -> ULONG,
    pub Initialize: unsafe extern "C" fn(Drv, AudioServerPlugInHostRef) -> OSStatus,
    pub CreateDevice: unsafe extern "C" fn(
        Drv,
        CFTypeRef,
        *const AudioServerPlugInClientInfo,
        *mut AudioObjectID,
    ) -> OSStatus,
    pub DestroyDevice: unsafe extern "C" fn(Drv, AudioObjectID) -> OSStatus,
    pub AddDeviceClient:
        unsafe extern "C" fn(Drv, AudioObjectID, *const AudioServerPlugInClientInfo) -> OSStatus,
    pub RemoveDeviceClient:
        unsafe extern "C" fn(Drv, AudioObjectID, *const AudioServerPlugInClientInfo) -> OSStatus,
    pub PerformDeviceConfigurationChange:
        unsafe extern "C" fn(Drv, AudioObjectID, u64, *mut c_void) -> OSStatus,
    pub AbortDeviceConfigurationChange:
        unsafe extern "C" fn(Drv, AudioObjectID, u64, *mut c_void) -> OSStatus,
    pub HasProperty: unsafe extern "C" fn(Drv, AudioObjectID, PidT, Addr) -> Boolean,
    pub IsPropertySettable:
        unsafe extern "C" fn(Drv, AudioObjectID, PidT, Addr, *mut Boolean) -> OSStatus,
    pub GetPropertyDataSize: unsafe extern "C" fn(
        Drv,
        AudioObjectID,
        PidT,
        Addr,
        u32,
        *const c_void,
        *mut u32,
    ) -> OSStatus,
    pub GetPropertyData: unsafe extern "C" fn(
        Drv,
        AudioObjectID,
        PidT,
        Addr,
        u32,
        *const c_void,
        u32,
        *mut u32,
        *mut c_void,
    ) -> OSStatus,
    pub SetPropertyData: unsafe extern "C" fn(
        Drv,
        AudioObjectID,
        PidT,
        Addr,
        u32,
        *const c_void,
        u32,
        *const c_void,
    ) -> OSStatus,
    pub StartIO: unsafe extern "C" fn(Drv, AudioObjectID, u32) -> OSStatus,
    pub StopIO: unsafe extern "C" fn(Drv, AudioObjectID, u32) -> OSStatus,
    pub GetZeroTimeStamp:
        unsafe extern "C" fn(Drv, AudioObjectID, u32, *mut f64, *mut u64, *mut u64) -> OSStatus,
    pub WillDoIOOperation:
        unsafe extern "C" fn(Drv, AudioObjectID, u32, u32, *mut Boolean, *mut Boolean) -> OSStatus,
    pub BeginIOOperation:
        unsafe extern "C" fn(Drv, AudioObjectID, u32, u32, u32, Cycle) -> OSStatus,
    pub DoIOOperation: unsafe extern "C" fn(
        Drv,
        AudioObjectID,
        AudioObjectID,
        u32,
        u32,
        u32,
        Cycle,
        *mut c_void,
        *mut c_void,
    ) -> OSStatus,
    pub EndIOOperation: unsafe extern "C" fn(Drv, AudioObjectID, u32, u32, u32, Cycle) -> OSStatus,
}

// SAFETY-free compile-time layout proof (64-bit Apple targets; LP64 rules hold on every 64-bit
// target this crate is built for). Offsets are counted from the header's field order.
const _: () = {
    assert!(
        size_of::<*const c_void>() == 8,
        "the plug-in ABI here is LP64 only"
    );
    assert!(size_of::<CFUUIDBytes>() == 16);
    assert!(size_of::<AudioObjectPropertyAddress>() == 12);
    assert!(offset_of!(AudioObjectPropertyAddress, mScope) == 4);
    assert!(offset_of!(AudioObjectPropertyAddress, mElement) == 8);
    assert!(size_of::<SMPTETime>() == 24);
    assert!(offset_of!(SMPTETime, mHours) == 16);
    assert!(size_of::<AudioTimeStamp>() == 64);
    assert!(offset_of!(AudioTimeStamp, mHostTime) == 8);
    assert!(offset_of!(AudioTimeStamp, mRateScalar) == 16);
    assert!(offset_of!(AudioTimeStamp, mWordClockTime) == 24);
    assert!(offset_of!(AudioTimeStamp, mSMPTETime) == 32);
    assert!(offset_of!(AudioTimeStamp, mFlags) == 56);
    assert!(offset_of!(AudioTimeStamp, mReserved) == 60);
    assert!(size_of::<AudioStreamBasicDescription>() == 40);
    assert!(offset_of!(AudioStreamBasicDescription, mFormatID) == 8);
    assert!(offset_of!(AudioStreamBasicDescription, mFramesPerPacket) == 20);
    assert!(offset_of!(AudioStreamBasicDescription, mBytesPerFrame) == 24);
    assert!(offset_of!(AudioStreamBasicDescription, mChannelsPerFrame) == 28);
    assert!(offset_of!(AudioStreamBasicDescription, mReserved) == 36);
    assert!(size_of::<AudioValueRange>() == 16);
    assert!(size_of::<AudioStreamRangedDescription>() == 56);
    assert!(offset_of!(AudioStreamRangedDescription, mSampleRateRange) == 40);
    assert!(size_of::<AudioServerPlugInCustomPropertyInfo>() == 12);
    assert!(offset_of!(AudioServerPlugInCustomPropertyInfo, mQualifierDataType) == 8);
    // UInt32, pid_t, Boolean, then 7 bytes of padding before the 8-aligned CFStringRef.
    assert!(size_of::<AudioServerPlugInClientInfo>() == 24);
    assert!(offset_of!(AudioServerPlugInClientInfo, mProcessID) == 4);
    assert!(offset_of!(AudioServerPlugInClientInfo, mIsNativeEndian) == 8);
    assert!(offset_of!(AudioServerPlugInClientInfo, mBundleID) == 16);
    // UInt64, UInt32 (+4 padding), 3 x AudioTimeStamp, 2 x Float64.
    assert!(size_of::<AudioServerPlugInIOCycleInfo>() == 224);
    assert!(offset_of!(AudioServerPlugInIOCycleInfo, mNominalIOBufferFrameSize) == 8);
    assert!(offset_of!(AudioServerPlugInIOCycleInfo, mCurrentTime) == 16);
    assert!(offset_of!(AudioServerPlugInIOCycleInfo, mInputTime) == 80);
    assert!(offset_of!(AudioServerPlugInIOCycleInfo, mOutputTime) == 144);
    assert!(offset_of!(AudioServerPlugInIOCycleInfo, mMainHostTicksPerFrame) == 208);
    assert!(offset_of!(AudioServerPlugInIOCycleInfo, mDeviceHostTicksPerFrame) == 216);
    // Five function pointers.
    assert!(size_of::<AudioServerPlugInHostInterface>() == 5 * 8);
    assert!(offset_of!(AudioServerPlugInHostInterface, CopyFromStorage) == 8);
    assert!(
        offset_of!(
            AudioServerPlugInHostInterface,
            RequestDeviceConfigurationChange
        ) == 32
    );
    // _reserved + 3 IUnknown methods + 19 driver methods, in header order.
    assert!(size_of::<AudioServerPlugInDriverInterface>() == 23 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, QueryInterface) == 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, Initialize) == 4 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, CreateDevice) == 5 * 8);
    assert!(
        offset_of!(
            AudioServerPlugInDriverInterface,
            AbortDeviceConfigurationChange
        ) == 10 * 8
    );
    assert!(offset_of!(AudioServerPlugInDriverInterface, HasProperty) == 11 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, SetPropertyData) == 15 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, StartIO) == 16 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, GetZeroTimeStamp) == 18 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, WillDoIOOperation) == 19 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, DoIOOperation) == 21 * 8);
    assert!(offset_of!(AudioServerPlugInDriverInterface, EndIOOperation) == 22 * 8);
};

/// Cross-check against the one plug-in struct objc2-core-audio does bind (Apple targets only).
#[cfg(target_vendor = "apple")]
const _: () = {
    use objc2_core_audio as ca;
    assert!(
        size_of::<ca::AudioServerPlugInClientInfo>() == size_of::<AudioServerPlugInClientInfo>()
    );
    assert!(
        offset_of!(ca::AudioServerPlugInClientInfo, mBundleID)
            == offset_of!(AudioServerPlugInClientInfo, mBundleID)
    );
    assert!(
        size_of::<ca::AudioServerPlugInCustomPropertyInfo>()
            == size_of::<AudioServerPlugInCustomPropertyInfo>()
    );
    assert!(size_of::<objc2_core_audio_types::AudioTimeStamp>() == size_of::<AudioTimeStamp>());
    assert!(
        size_of::<objc2_core_audio_types::AudioStreamBasicDescription>()
            == size_of::<AudioStreamBasicDescription>()
    );
};
