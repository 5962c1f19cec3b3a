//! Static PortCls descriptors of the two filters:
//!
//! ```text
//!  Topology filter ("Topology")            Wave filter ("Wave")
//!  [0 mic in, bridge] --> [1 out, bridge] ==physical==> [1 in, bridge] --> [0 host capture pin] --> apps
//! ```
//! No nodes: there is no volume or mute node, so no client (and not the OS's generic mute)
//! can pretend to control the hard mute; the endpoint's own mute stays the OS's software
//! mute on top of ours.

use crate::ddk::access::guid;
use crate::ddk::extra::PCFILTER_NODE;
use crate::ddk::*;
use crate::guids::*;
use core::ptr::null;
use hardmute_windows_model::format::CAPTURE_RANGES;
use hardmute_windows_model::guid as g;
use hardmute_windows_model::ks::KsDataRangeAudio;
use hardmute_windows_model::miniport::*;

/// Wraps descriptor statics that contain raw pointers to other statics.
#[repr(transparent)]
pub struct Static<T>(pub T);
// SAFETY: the wrapped descriptors are immutable and point only at other immutable statics.
unsafe impl<T> Sync for Static<T> {}

const fn ks_range(i: usize) -> KSDATARANGE_AUDIO {
    let model: KsDataRangeAudio = CAPTURE_RANGES[i].to_ks();
    // SAFETY: identical layout: the model's mirror and the DDK struct pass the same
    // size/offset assertions (ddk/layout.rs, model ks.rs); transmute checks the size too.
    unsafe { core::mem::transmute::<KsDataRangeAudio, KSDATARANGE_AUDIO>(model) }
}

pub static CAPTURE_DATA_RANGES: Static<[KSDATARANGE_AUDIO; 4]> =
    Static([ks_range(0), ks_range(1), ks_range(2), ks_range(3)]);

static CAPTURE_RANGE_PTRS: Static<[PKSDATARANGE; 4]> = Static([
    &CAPTURE_DATA_RANGES.0[0] as *const KSDATARANGE_AUDIO as PKSDATARANGE,
    &CAPTURE_DATA_RANGES.0[1] as *const KSDATARANGE_AUDIO as PKSDATARANGE,
    &CAPTURE_DATA_RANGES.0[2] as *const KSDATARANGE_AUDIO as PKSDATARANGE,
    &CAPTURE_DATA_RANGES.0[3] as *const KSDATARANGE_AUDIO as PKSDATARANGE,
]);

/// Index of `range` in the capture pin's table (DataRangeIntersection's `MatchingDataRange`).
pub fn capture_range_index(range: *const KSDATARANGE) -> Option<usize> {
    CAPTURE_RANGE_PTRS
        .0
        .iter()
        .position(|&p| core::ptr::eq(p, range))
}

const fn analog_range() -> KSDATARANGE {
    // SAFETY: all-zero is a valid KSDATARANGE (integers and GUIDs).
    let mut r: KSDATARANGE = unsafe { core::mem::zeroed() };
    r.__bindgen_anon_1.FormatSize = core::mem::size_of::<KSDATARANGE>() as ULONG;
    r.__bindgen_anon_1.MajorFormat = guid(g::KSDATAFORMAT_TYPE_AUDIO);
    r.__bindgen_anon_1.SubFormat = KSDATAFORMAT_SUBTYPE_ANALOG;
    r.__bindgen_anon_1.Specifier = KSDATAFORMAT_SPECIFIER_NONE;
    r
}
static ANALOG_RANGE: Static<KSDATARANGE> = Static(analog_range());
static ANALOG_RANGE_PTRS: Static<[PKSDATARANGE; 1]> =
    Static([&ANALOG_RANGE.0 as *const KSDATARANGE as PKSDATARANGE]);

static CATEGORY_AUDIO: GUID = guid(g::KSCATEGORY_AUDIO);
static NODETYPE_MICROPHONE: GUID = guid(g::KSNODETYPE_MICROPHONE);

const fn pin(
    max_instances: ULONG,
    ranges: &'static [PKSDATARANGE],
    flow: KSPIN_DATAFLOW::Type,
    communication: KSPIN_COMMUNICATION::Type,
    category: &'static GUID,
) -> PCPIN_DESCRIPTOR {
    // SAFETY: all-zero is valid for every field (counts, null pointers, the union).
    let mut ks: KSPIN_DESCRIPTOR = unsafe { core::mem::zeroed() };
    ks.DataRangesCount = ranges.len() as ULONG;
    ks.DataRanges = ranges.as_ptr();
    ks.DataFlow = flow;
    ks.Communication = communication;
    ks.Category = category;
    PCPIN_DESCRIPTOR {
        MaxGlobalInstanceCount: max_instances,
        MaxFilterInstanceCount: max_instances,
        MinFilterInstanceCount: 0,
        AutomationTable: null(),
        KsPinDescriptor: ks,
    }
}

static WAVE_PINS: Static<[PCPIN_DESCRIPTOR; 2]> = Static([
    // WAVE_PIN_HOST: streams captured audio out to the audio engine.
    pin(
        MAX_CAPTURE_STREAMS,
        &CAPTURE_RANGE_PTRS.0,
        KSPIN_DATAFLOW::KSPIN_DATAFLOW_OUT,
        KSPIN_COMMUNICATION::KSPIN_COMMUNICATION_SINK,
        &CATEGORY_AUDIO,
    ),
    // WAVE_PIN_BRIDGE: analog input from the topology filter.
    pin(
        0,
        &ANALOG_RANGE_PTRS.0,
        KSPIN_DATAFLOW::KSPIN_DATAFLOW_IN,
        KSPIN_COMMUNICATION::KSPIN_COMMUNICATION_NONE,
        &NODETYPE_MICROPHONE,
    ),
]);

static WAVE_CONNECTIONS: Static<[PCCONNECTION_DESCRIPTOR; 1]> = Static([PCCONNECTION_DESCRIPTOR {
    FromNode: PCFILTER_NODE,
    FromNodePin: WAVE_PIN_BRIDGE,
    ToNode: PCFILTER_NODE,
    ToNodePin: WAVE_PIN_HOST,
}]);

/// Same categories as the INF's `Wave` interfaces.
static WAVE_CATEGORIES: Static<[GUID; 3]> = Static([
    guid(g::KSCATEGORY_AUDIO),
    guid(g::KSCATEGORY_CAPTURE),
    guid(g::KSCATEGORY_REALTIME),
]);

pub static WAVE_FILTER: Static<PCFILTER_DESCRIPTOR> = Static(PCFILTER_DESCRIPTOR {
    Version: 0,
    AutomationTable: null(),
    PinSize: core::mem::size_of::<PCPIN_DESCRIPTOR>() as ULONG,
    PinCount: 2,
    Pins: WAVE_PINS.0.as_ptr(),
    NodeSize: core::mem::size_of::<PCNODE_DESCRIPTOR>() as ULONG,
    NodeCount: 0,
    Nodes: null(),
    ConnectionCount: 1,
    Connections: WAVE_CONNECTIONS.0.as_ptr(),
    CategoryCount: WAVE_CATEGORIES.0.len() as ULONG,
    Categories: WAVE_CATEGORIES.0.as_ptr(),
});

static TOPO_PINS: Static<[PCPIN_DESCRIPTOR; 2]> = Static([
    // TOPO_PIN_MIC: the (virtual) microphone jack.
    pin(
        0,
        &ANALOG_RANGE_PTRS.0,
        KSPIN_DATAFLOW::KSPIN_DATAFLOW_IN,
        KSPIN_COMMUNICATION::KSPIN_COMMUNICATION_NONE,
        &NODETYPE_MICROPHONE,
    ),
    // TOPO_PIN_LINEOUT: bridge to the wave filter.
    pin(
        0,
        &ANALOG_RANGE_PTRS.0,
        KSPIN_DATAFLOW::KSPIN_DATAFLOW_OUT,
        KSPIN_COMMUNICATION::KSPIN_COMMUNICATION_NONE,
        &CATEGORY_AUDIO,
    ),
]);

static TOPO_CONNECTIONS: Static<[PCCONNECTION_DESCRIPTOR; 1]> = Static([PCCONNECTION_DESCRIPTOR {
    FromNode: PCFILTER_NODE,
    FromNodePin: TOPO_PIN_MIC,
    ToNode: PCFILTER_NODE,
    ToNodePin: TOPO_PIN_LINEOUT,
}]);

static TOPO_CATEGORIES: Static<[GUID; 1]> = Static([guid(g::KSCATEGORY_TOPOLOGY)]);

pub static TOPOLOGY_FILTER: Static<PCFILTER_DESCRIPTOR> = Static(PCFILTER_DESCRIPTOR {
    Version: 0,
    AutomationTable: null(),
    PinSize: core::mem::size_of::<PCPIN_DESCRIPTOR>() as ULONG,
    PinCount: 2,
    Pins: TOPO_PINS.0.as_ptr(),
    NodeSize: core::mem::size_of::<PCNODE_DESCRIPTOR>() as ULONG,
    NodeCount: 0,
    Nodes: null(),
    ConnectionCount: 1,
    Connections: TOPO_CONNECTIONS.0.as_ptr(),
    CategoryCount: TOPO_CATEGORIES.0.len() as ULONG,
    Categories: TOPO_CATEGORIES.0.as_ptr(),
});
