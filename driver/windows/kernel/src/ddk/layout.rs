//! Size/offset assertions every binding source must pass (mingw-w64 here, the WDK on
//! Windows). The expected numbers come from the portable model, whose own `#[repr(C)]`
//! mirrors are asserted against the documented Windows x64 layouts; the public Rust attempt
//! at a WaveRT driver broke on exactly these (KSDATARANGE_AUDIO at 84 bytes because the
//! KSDATAFORMAT alignment union was lost; ULONG vs usize in AllocateAudioBuffer).

use super::*;
use core::mem::{align_of, offset_of, size_of};
use hardmute_windows_model::ks;

const PTR: usize = size_of::<usize>();

const _: () = {
    assert!(PTR == 8, "x86_64 / arm64 kernels only");
    // Basic types whose width bindgen derives from the target.
    assert!(size_of::<ULONG>() == 4 && size_of::<LONG>() == 4 && size_of::<NTSTATUS>() == 4);
    assert!(size_of::<GUID>() == 16 && align_of::<GUID>() == 4);
    assert!(size_of::<LARGE_INTEGER>() == 8);

    // KS data formats and ranges.
    assert!(size_of::<KSDATAFORMAT>() == ks::KSDATAFORMAT_SIZE);
    assert!(
        align_of::<KSDATAFORMAT>() == 8,
        "the LONGLONG Alignment union member"
    );
    assert!(
        size_of::<KSDATARANGE_AUDIO>() == ks::KSDATARANGE_AUDIO_SIZE,
        "88, not 84"
    );
    assert!(align_of::<KSDATARANGE_AUDIO>() == 8);
    assert!(offset_of!(KSDATARANGE_AUDIO, MaximumChannels) == ks::OFF_MAX_CHANNELS);
    assert!(offset_of!(KSDATARANGE_AUDIO, MinimumBitsPerSample) == ks::OFF_MIN_BITS);
    assert!(offset_of!(KSDATARANGE_AUDIO, MaximumBitsPerSample) == ks::OFF_MAX_BITS);
    assert!(offset_of!(KSDATARANGE_AUDIO, MinimumSampleFrequency) == ks::OFF_MIN_FREQ);
    assert!(offset_of!(KSDATARANGE_AUDIO, MaximumSampleFrequency) == ks::OFF_MAX_FREQ);
    assert!(size_of::<WAVEFORMATEX>() == ks::WAVEFORMATEX_SIZE);
    assert!(size_of::<WAVEFORMATEXTENSIBLE>() == ks::WAVEFORMATEXTENSIBLE_SIZE);
    assert!(offset_of!(WAVEFORMATEXTENSIBLE, SubFormat) + ks::OFF_WFX == ks::OFF_WFX_SUB);
    assert!(offset_of!(WAVEFORMATEXTENSIBLE, dwChannelMask) + ks::OFF_WFX == ks::OFF_WFX_MASK);
    assert!(size_of::<KSAUDIO_POSITION>() == 16);
    assert!(size_of::<KSRTAUDIO_HWLATENCY>() == 12);
    assert!(size_of::<KSRTAUDIO_HWREGISTER>() == 40);

    // PortCls descriptors.
    assert!(size_of::<KSPIN_DESCRIPTOR>() == 88);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataRangesCount) == 32);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataRanges) == 40);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataFlow) == 48);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Communication) == 52);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Category) == 56);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Name) == 64);
    assert!(size_of::<PCPIN_DESCRIPTOR>() == 112);
    assert!(offset_of!(PCPIN_DESCRIPTOR, KsPinDescriptor) == 24);
    assert!(size_of::<PCNODE_DESCRIPTOR>() == 32);
    assert!(size_of::<PCCONNECTION_DESCRIPTOR>() == 16);
    assert!(size_of::<PCAUTOMATION_TABLE>() == 56);
    assert!(size_of::<PCFILTER_DESCRIPTOR>() == 80);
    assert!(offset_of!(PCFILTER_DESCRIPTOR, Pins) == 24);
    assert!(offset_of!(PCFILTER_DESCRIPTOR, Nodes) == 40);
    assert!(offset_of!(PCFILTER_DESCRIPTOR, Connections) == 56);
    assert!(offset_of!(PCFILTER_DESCRIPTOR, Categories) == 72);

    // COM vtables: one pointer per method, in the header's order.
    assert!(size_of::<IUnknownVtbl>() == 3 * PTR);
    assert!(size_of::<IMiniportWaveRTVtbl>() == 8 * PTR);
    assert!(offset_of!(IMiniportWaveRTVtbl, GetDescription) == 3 * PTR);
    assert!(offset_of!(IMiniportWaveRTVtbl, DataRangeIntersection) == 4 * PTR);
    assert!(offset_of!(IMiniportWaveRTVtbl, Init) == 5 * PTR);
    assert!(offset_of!(IMiniportWaveRTVtbl, NewStream) == 6 * PTR);
    assert!(offset_of!(IMiniportWaveRTVtbl, GetDeviceDescription) == 7 * PTR);
    assert!(size_of::<IMiniportWaveRTStreamVtbl>() == 11 * PTR);
    assert!(size_of::<IMiniportWaveRTStreamNotificationVtbl>() == 15 * PTR);
    assert!(offset_of!(IMiniportWaveRTStreamNotificationVtbl, SetFormat) == 3 * PTR);
    assert!(offset_of!(IMiniportWaveRTStreamNotificationVtbl, AllocateAudioBuffer) == 6 * PTR);
    assert!(offset_of!(IMiniportWaveRTStreamNotificationVtbl, GetClockRegister) == 10 * PTR);
    assert!(
        offset_of!(
            IMiniportWaveRTStreamNotificationVtbl,
            AllocateBufferWithNotification
        ) == 11 * PTR
    );
    assert!(
        offset_of!(
            IMiniportWaveRTStreamNotificationVtbl,
            UnregisterNotificationEvent
        ) == 14 * PTR
    );
    // Hand-declared in extra.rs (mingw-w64 lacks it): IUnknown, then GetReadPacket, whose
    // out parameters are ULONG, DWORD, ULONG64 and BOOL.
    assert!(size_of::<extra::IMiniportWaveRTInputStreamVtbl>() == 4 * PTR);
    assert!(offset_of!(extra::IMiniportWaveRTInputStreamVtbl, QueryInterface) == 0);
    assert!(offset_of!(extra::IMiniportWaveRTInputStreamVtbl, Release) == 2 * PTR);
    assert!(offset_of!(extra::IMiniportWaveRTInputStreamVtbl, GetReadPacket) == 3 * PTR);
    assert!(size_of::<extra::IMiniportWaveRTInputStream>() == PTR);
    assert!(size_of::<DWORD>() == 4 && size_of::<extra::BOOL>() == 4);
    assert!(size_of::<extra::ULONG64>() == 8);
    assert!(size_of::<IMiniportTopologyVtbl>() == 6 * PTR);
    assert!(offset_of!(IMiniportTopologyVtbl, Init) == 5 * PTR);
    assert!(size_of::<IPortWaveRTStreamVtbl>() == 10 * PTR);
    assert!(offset_of!(IPortWaveRTStreamVtbl, AllocatePagesForMdl) == 3 * PTR);
    assert!(offset_of!(IPortWaveRTStreamVtbl, MapAllocatedPages) == 5 * PTR);
    assert!(offset_of!(IPortWaveRTStreamVtbl, FreePagesFromMdl) == 7 * PTR);
    assert!(offset_of!(IPortVtbl, Init) == 3 * PTR);

    // IRP plumbing the glue touches directly.
    assert!(offset_of!(IO_STACK_LOCATION, Parameters) == 8);
    assert!(offset_of!(IO_STACK_LOCATION, FileObject) == 48);
    assert!(offset_of!(IRP, MdlAddress) == 8);
    assert!(offset_of!(IRP, AssociatedIrp) == 24);
    assert!(offset_of!(IRP, IoStatus) == 48);
    assert!(offset_of!(IRP, Cancel) == 68);
    assert!(offset_of!(IRP, CancelIrql) == 69);
    assert!(offset_of!(IRP, CancelRoutine) == 104);
    assert!(size_of::<IRP>() == 208);
    assert!(offset_of!(DRIVER_OBJECT, MajorFunction) == 112);
    assert!(offset_of!(DRIVER_OBJECT, DriverUnload) == 104);
    assert!(offset_of!(MDL, MappedSystemVa) == 24 && offset_of!(MDL, ByteCount) == 40);
};
