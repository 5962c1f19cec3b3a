//! The CoreAudio constants the plug-in uses, kept by hand.
//!
//! objc2-core-audio binds all of these, but it cannot be built off Apple targets (it links CoreAudio
//! with `kind = "framework"`), and the plug-in's logic must build and run on Linux under the simulated
//! coreaudiod. So the values live here, and on Apple targets a compile-time block asserts each one
//! equals objc2-core-audio's (which is generated from Apple's SDK headers).

#![allow(non_upper_case_globals)]

use crate::abi::{AudioObjectID, AudioObjectPropertySelector, OSStatus};

/// A four-character code as CoreAudio spells it: `'abcd'` big-endian in a UInt32.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*code)
}

// --- status codes ---------------------------------------------------------------------------
pub const kAudioHardwareNoError: OSStatus = 0;
pub const kAudioHardwareNotRunningError: OSStatus = fourcc(b"stop") as OSStatus;
pub const kAudioHardwareUnspecifiedError: OSStatus = fourcc(b"what") as OSStatus;
pub const kAudioHardwareUnknownPropertyError: OSStatus = fourcc(b"who?") as OSStatus;
pub const kAudioHardwareBadPropertySizeError: OSStatus = fourcc(b"!siz") as OSStatus;
pub const kAudioHardwareIllegalOperationError: OSStatus = fourcc(b"nope") as OSStatus;
pub const kAudioHardwareBadObjectError: OSStatus = fourcc(b"!obj") as OSStatus;
pub const kAudioHardwareBadDeviceError: OSStatus = fourcc(b"!dev") as OSStatus;
pub const kAudioHardwareBadStreamError: OSStatus = fourcc(b"!str") as OSStatus;
pub const kAudioHardwareUnsupportedOperationError: OSStatus = fourcc(b"unop") as OSStatus;
pub const kAudioDeviceUnsupportedFormatError: OSStatus = fourcc(b"!dat") as OSStatus;
pub const kAudioDevicePermissionsError: OSStatus = fourcc(b"!hog") as OSStatus;

// COM (CFPlugInCOM.h) results.
pub const S_OK: i32 = 0;
pub const E_NOINTERFACE: i32 = 0x8000_0004_u32 as i32;

// --- object ids -----------------------------------------------------------------------------
pub const kAudioObjectUnknown: AudioObjectID = 0;
pub const kAudioObjectPlugInObject: AudioObjectID = 1;
pub const kAudioServerPlugInHostClientID: u32 = 0;

// --- classes --------------------------------------------------------------------------------
pub const kAudioObjectClassID: u32 = fourcc(b"aobj");
pub const kAudioPlugInClassID: u32 = fourcc(b"aplg");
pub const kAudioDeviceClassID: u32 = fourcc(b"adev");
pub const kAudioStreamClassID: u32 = fourcc(b"astr");

// --- scopes / elements ----------------------------------------------------------------------
pub const kAudioObjectPropertyScopeGlobal: u32 = fourcc(b"glob");
pub const kAudioObjectPropertyScopeInput: u32 = fourcc(b"inpt");
pub const kAudioObjectPropertyScopeOutput: u32 = fourcc(b"outp");
pub const kAudioObjectPropertyScopeWildcard: u32 = fourcc(b"****");
pub const kAudioObjectPropertyElementMain: u32 = 0;

// --- AudioObject properties -----------------------------------------------------------------
pub const kAudioObjectPropertyBaseClass: AudioObjectPropertySelector = fourcc(b"bcls");
pub const kAudioObjectPropertyClass: AudioObjectPropertySelector = fourcc(b"clas");
pub const kAudioObjectPropertyOwner: AudioObjectPropertySelector = fourcc(b"stdv");
pub const kAudioObjectPropertyName: AudioObjectPropertySelector = fourcc(b"lnam");
pub const kAudioObjectPropertyManufacturer: AudioObjectPropertySelector = fourcc(b"lmak");
pub const kAudioObjectPropertyOwnedObjects: AudioObjectPropertySelector = fourcc(b"ownd");
pub const kAudioObjectPropertyControlList: AudioObjectPropertySelector = fourcc(b"ctrl");
pub const kAudioObjectPropertyCustomPropertyInfoList: AudioObjectPropertySelector = fourcc(b"cust");

// --- AudioPlugIn properties -----------------------------------------------------------------
pub const kAudioPlugInPropertyDeviceList: AudioObjectPropertySelector = fourcc(b"dev#");
pub const kAudioPlugInPropertyTranslateUIDToDevice: AudioObjectPropertySelector = fourcc(b"uidd");
pub const kAudioPlugInPropertyResourceBundle: AudioObjectPropertySelector = fourcc(b"rsrc");

// --- AudioDevice properties -----------------------------------------------------------------
pub const kAudioDevicePropertyDeviceUID: AudioObjectPropertySelector = fourcc(b"uid ");
pub const kAudioDevicePropertyModelUID: AudioObjectPropertySelector = fourcc(b"muid");
pub const kAudioDevicePropertyTransportType: AudioObjectPropertySelector = fourcc(b"tran");
pub const kAudioDevicePropertyRelatedDevices: AudioObjectPropertySelector = fourcc(b"akin");
pub const kAudioDevicePropertyClockDomain: AudioObjectPropertySelector = fourcc(b"clkd");
pub const kAudioDevicePropertyDeviceIsAlive: AudioObjectPropertySelector = fourcc(b"livn");
pub const kAudioDevicePropertyDeviceIsRunning: AudioObjectPropertySelector = fourcc(b"goin");
/// Some process runs IO on the device (what "mic in use" watchers and hardmuted listen to).
pub const kAudioDevicePropertyDeviceIsRunningSomewhere: AudioObjectPropertySelector =
    fourcc(b"gone");
pub const kAudioDevicePropertyDeviceCanBeDefaultDevice: AudioObjectPropertySelector =
    fourcc(b"dflt");
pub const kAudioDevicePropertyDeviceCanBeDefaultSystemDevice: AudioObjectPropertySelector =
    fourcc(b"sflt");
pub const kAudioDevicePropertyLatency: AudioObjectPropertySelector = fourcc(b"ltnc");
pub const kAudioDevicePropertyStreams: AudioObjectPropertySelector = fourcc(b"stm#");
pub const kAudioDevicePropertySafetyOffset: AudioObjectPropertySelector = fourcc(b"saft");
pub const kAudioDevicePropertyNominalSampleRate: AudioObjectPropertySelector = fourcc(b"nsrt");
pub const kAudioDevicePropertyAvailableNominalSampleRates: AudioObjectPropertySelector =
    fourcc(b"nsr#");
pub const kAudioDevicePropertyIsHidden: AudioObjectPropertySelector = fourcc(b"hidn");
pub const kAudioDevicePropertyPreferredChannelsForStereo: AudioObjectPropertySelector =
    fourcc(b"dch2");
pub const kAudioDevicePropertyZeroTimeStampPeriod: AudioObjectPropertySelector = fourcc(b"ring");
pub const kAudioDevicePropertyClockIsStable: AudioObjectPropertySelector = fourcc(b"cstb");
pub const kAudioDeviceTransportTypeVirtual: u32 = fourcc(b"virt");

// --- AudioStream properties -----------------------------------------------------------------
pub const kAudioStreamPropertyIsActive: AudioObjectPropertySelector = fourcc(b"sact");
pub const kAudioStreamPropertyDirection: AudioObjectPropertySelector = fourcc(b"sdir");
pub const kAudioStreamPropertyTerminalType: AudioObjectPropertySelector = fourcc(b"term");
pub const kAudioStreamPropertyStartingChannel: AudioObjectPropertySelector = fourcc(b"schn");
pub const kAudioStreamPropertyLatency: AudioObjectPropertySelector = kAudioDevicePropertyLatency;
pub const kAudioStreamPropertyVirtualFormat: AudioObjectPropertySelector = fourcc(b"sfmt");
pub const kAudioStreamPropertyAvailableVirtualFormats: AudioObjectPropertySelector =
    fourcc(b"sfma");
pub const kAudioStreamPropertyPhysicalFormat: AudioObjectPropertySelector = fourcc(b"pft ");
pub const kAudioStreamPropertyAvailablePhysicalFormats: AudioObjectPropertySelector =
    fourcc(b"pfta");
pub const kAudioStreamTerminalTypeMicrophone: u32 = fourcc(b"micr");
pub const kAudioStreamTerminalTypeLine: u32 = fourcc(b"line");

// --- formats --------------------------------------------------------------------------------
pub const kAudioFormatLinearPCM: u32 = fourcc(b"lpcm");
/// kAudioFormatFlagIsFloat | kAudioFormatFlagIsPacked (| native endian, 0 on both Apple archs).
pub const kAudioFormatFlagsNativeFloatPacked: u32 = 1 | 8;

// --- AudioServerPlugIn.h --------------------------------------------------------------------
pub const kAudioServerPlugInCustomPropertyDataTypeCFPropertyList: u32 = fourcc(b"plst");
pub const kAudioServerPlugInIOOperationThread: u32 = fourcc(b"thrd");
pub const kAudioServerPlugInIOOperationCycle: u32 = fourcc(b"cycl");
pub const kAudioServerPlugInIOOperationReadInput: u32 = fourcc(b"read");
pub const kAudioServerPlugInIOOperationWriteMix: u32 = fourcc(b"rite");

/// 443ABAB8-E7B3-491A-B985-BEB9187030DB (kAudioServerPlugInTypeUUID).
pub const kAudioServerPlugInTypeUUID: [u8; 16] = [
    0x44, 0x3A, 0xBA, 0xB8, 0xE7, 0xB3, 0x49, 0x1A, 0xB9, 0x85, 0xBE, 0xB9, 0x18, 0x70, 0x30, 0xDB,
];
/// EEA5773D-CC43-49F1-8E00-8F96E7D23B17 (kAudioServerPlugInDriverInterfaceUUID).
pub const kAudioServerPlugInDriverInterfaceUUID: [u8; 16] = [
    0xEE, 0xA5, 0x77, 0x3D, 0xCC, 0x43, 0x49, 0xF1, 0x8E, 0x00, 0x8F, 0x96, 0xE7, 0xD2, 0x3B, 0x17,
];
/// 00000000-0000-0000-C000-000000000046 (IUnknownUUID, CFPlugInCOM.h).
pub const IUnknownUUID: [u8; 16] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

/// Compile-time proof that the hand-kept values equal Apple's, where Apple's are available.
#[cfg(target_vendor = "apple")]
const _: () = {
    use objc2_core_audio as ca;
    use objc2_core_audio_types as cat;
    macro_rules! same {
        ($($name:ident),* $(,)?) => { $( assert!($name as i64 == ca::$name as i64); )* };
    }
    same!(
        kAudioHardwareNoError,
        kAudioHardwareNotRunningError,
        kAudioHardwareUnspecifiedError,
        kAudioHardwareUnknownPropertyError,
        kAudioHardwareBadPropertySizeError,
        kAudioHardwareIllegalOperationError,
        kAudioHardwareBadObjectError,
        kAudioHardwareBadDeviceError,
        kAudioHardwareBadStreamError,
        kAudioHardwareUnsupportedOperationError,
        kAudioDeviceUnsupportedFormatError,
        kAudioDevicePermissionsError,
        kAudioObjectUnknown,
        kAudioObjectPlugInObject,
        kAudioServerPlugInHostClientID,
        kAudioObjectClassID,
        kAudioPlugInClassID,
        kAudioDeviceClassID,
        kAudioStreamClassID,
        kAudioObjectPropertyScopeGlobal,
        kAudioObjectPropertyScopeInput,
        kAudioObjectPropertyScopeOutput,
        kAudioObjectPropertyScopeWildcard,
        kAudioObjectPropertyElementMain,
        kAudioObjectPropertyBaseClass,
        kAudioObjectPropertyClass,
        kAudioObjectPropertyOwner,
        kAudioObjectPropertyName,
        kAudioObjectPropertyManufacturer,
        kAudioObjectPropertyOwnedObjects,
        kAudioObjectPropertyControlList,
        kAudioObjectPropertyCustomPropertyInfoList,
        kAudioPlugInPropertyDeviceList,
        kAudioPlugInPropertyTranslateUIDToDevice,
        kAudioPlugInPropertyResourceBundle,
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
        kAudioDeviceTransportTypeVirtual,
        kAudioStreamPropertyIsActive,
        kAudioStreamPropertyDirection,
        kAudioStreamPropertyTerminalType,
        kAudioStreamPropertyStartingChannel,
        kAudioStreamPropertyLatency,
        kAudioStreamPropertyVirtualFormat,
        kAudioStreamPropertyAvailableVirtualFormats,
        kAudioStreamPropertyPhysicalFormat,
        kAudioStreamPropertyAvailablePhysicalFormats,
        kAudioStreamTerminalTypeMicrophone,
        kAudioStreamTerminalTypeLine,
        kAudioServerPlugInCustomPropertyDataTypeCFPropertyList,
    );
    // The IO operation ids are a newtype with associated constants in objc2-core-audio.
    assert!(kAudioServerPlugInIOOperationThread == ca::AudioServerPlugInIOOperation::Thread.0);
    assert!(kAudioServerPlugInIOOperationCycle == ca::AudioServerPlugInIOOperation::Cycle.0);
    assert!(
        kAudioServerPlugInIOOperationReadInput == ca::AudioServerPlugInIOOperation::ReadInput.0
    );
    assert!(kAudioServerPlugInIOOperationWriteMix == ca::AudioServerPlugInIOOperation::WriteMix.0);
    assert!(kAudioFormatLinearPCM == cat::kAudioFormatLinearPCM);
    assert!(kAudioFormatFlagsNativeFloatPacked == cat::kAudioFormatFlagsNativeFloatPacked);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_is_big_endian_like_the_c_multichar_literal() {
        // 'cust' in C is 0x63757374; the header comment and objc2 agree.
        assert_eq!(fourcc(b"cust"), 0x6375_7374);
        assert_eq!(kAudioHardwareBadPropertySizeError, 0x2173_697a);
    }

    #[test]
    fn uuids_match_the_header_text() {
        fn parse(s: &str) -> [u8; 16] {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            let mut out = [0u8; 16];
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
            }
            out
        }
        assert_eq!(
            kAudioServerPlugInTypeUUID,
            parse("443ABAB8-E7B3-491A-B985-BEB9187030DB")
        );
        assert_eq!(
            kAudioServerPlugInDriverInterfaceUUID,
            parse("EEA5773D-CC43-49F1-8E00-8F96E7D23B17")
        );
        assert_eq!(IUnknownUUID, parse("00000000-0000-0000-C000-000000000046"));
    }
}
