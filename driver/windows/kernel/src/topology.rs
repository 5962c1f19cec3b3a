//! The topology miniport (`IMiniportTopology`): a microphone jack bridged to the wave filter,
//! no nodes, no properties. It exists because the audio endpoint builder needs a topology
//! filter to form a capture endpoint.

use crate::ddk::access::guid_eq;
use crate::ddk::*;
use crate::descriptors::TOPOLOGY_FILTER;
use crate::guids::*;
use crate::pool;
use core::sync::atomic::{AtomicU32, Ordering};
use hardmute_windows_model::status::*;

#[repr(C)]
pub struct TopologyMiniport {
    vtbl: *const IMiniportTopologyVtbl,
    refs: AtomicU32,
}

static VTBL: IMiniportTopologyVtbl = IMiniportTopologyVtbl {
    QueryInterface: Some(query_interface),
    AddRef: Some(add_ref),
    Release: Some(release),
    GetDescription: Some(get_description),
    DataRangeIntersection: Some(data_range_intersection),
    Init: Some(init),
};

/// A new miniport with one reference, as PUNKNOWN; null when out of memory.
pub fn create() -> PUNKNOWN {
    pool::alloc(
        TopologyMiniport {
            vtbl: &VTBL,
            refs: AtomicU32::new(1),
        },
        pool::TAG_TOPOLOGY,
    )
    .cast()
}

unsafe extern "C" fn query_interface(
    this: *mut IMiniportTopology,
    iid: *const IID,
    out: *mut PVOID,
) -> NTSTATUS {
    // SAFETY: PortCls passes a valid IID and out pointer.
    let iid = unsafe { &*iid };
    if [IID_IUNKNOWN, IID_IMINIPORT, IID_IMINIPORT_TOPOLOGY]
        .iter()
        .any(|i| guid_eq(i, iid))
    {
        // SAFETY: `this` is our live object; the new reference is handed out.
        unsafe {
            add_ref(this);
            *out = this.cast();
        }
        STATUS_SUCCESS
    } else {
        // SAFETY: out pointer is valid per COM rules.
        unsafe { *out = core::ptr::null_mut() };
        STATUS_INVALID_PARAMETER
    }
}

unsafe extern "C" fn add_ref(this: *mut IMiniportTopology) -> ULONG {
    // SAFETY: `this` points at a live TopologyMiniport (the interface is its first field).
    let obj = unsafe { &*this.cast::<TopologyMiniport>() };
    obj.refs.fetch_add(1, Ordering::Relaxed) + 1
}

unsafe extern "C" fn release(this: *mut IMiniportTopology) -> ULONG {
    let obj = this.cast::<TopologyMiniport>();
    // SAFETY: live object; the last reference frees it exactly once.
    unsafe {
        let left = (*obj).refs.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 {
            pool::free(obj, pool::TAG_TOPOLOGY);
        }
        left
    }
}

unsafe extern "C" fn get_description(
    _this: *mut IMiniportTopology,
    out: *mut PPCFILTER_DESCRIPTOR,
) -> NTSTATUS {
    // SAFETY: PortCls passes a valid out pointer; the descriptor is static and never written.
    unsafe { *out = (&TOPOLOGY_FILTER.0 as *const PCFILTER_DESCRIPTOR).cast_mut() };
    STATUS_SUCCESS
}

unsafe extern "C" fn data_range_intersection(
    _this: *mut IMiniportTopology,
    _pin: ULONG,
    _client: PKSDATARANGE,
    _ours: PKSDATARANGE,
    _out_len: ULONG,
    _out: PVOID,
    _result_len: PULONG,
) -> NTSTATUS {
    // Analog bridge pins only: PortCls' default intersection handles them.
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "C" fn init(
    _this: *mut IMiniportTopology,
    _adapter: PUNKNOWN,
    _resources: PRESOURCELIST,
    _port: PPORTTOPOLOGY,
) -> NTSTATUS {
    STATUS_SUCCESS
}
