//! Driver entry, PnP start and IRP routing: PortCls owns the audio device; the control
//! device's IRPs are ours, everything else is forwarded with `PcDispatchIrp`.

use crate::control;
use crate::ddk::access::wide;
use crate::ddk::extra::*;
use crate::ddk::*;
use crate::guids::*;
use crate::{topology, wave};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering};
use hardmute_windows_model::miniport::{TOPO_PIN_LINEOUT, WAVE_PIN_BRIDGE};
use hardmute_windows_model::status::*;

/// PcRegisterSubdevice names = INF `AddInterface` reference strings.
static WAVE_NAME: [u16; 5] = wide("Wave");
static TOPOLOGY_NAME: [u16; 9] = wide("Topology");
const _: () = {
    // Keep the names in step with the model's (which the INF test reads).
    let a = hardmute_windows_model::miniport::WAVE_SUBDEVICE_NAME.as_bytes();
    let b = hardmute_windows_model::miniport::TOPOLOGY_SUBDEVICE_NAME.as_bytes();
    assert!(a.len() + 1 == WAVE_NAME.len() && b.len() + 1 == TOPOLOGY_NAME.len());
};

/// Two subdevices (topology + wave) per adapter.
const MAX_MINIPORTS: ULONG = 2;

/// PortCls' DriverUnload, chained from ours.
static PORTCLS_UNLOAD: AtomicUsize = AtomicUsize::new(0);

/// # Safety
/// Called by the I/O manager, once, at PASSIVE_LEVEL.
#[no_mangle]
pub unsafe extern "C" fn DriverEntry(
    driver: PDRIVER_OBJECT,
    registry_path: PUNICODE_STRING,
) -> NTSTATUS {
    klog!(
        info,
        "DriverEntry: HardMute virtual microphone driver {}",
        env!("CARGO_PKG_VERSION")
    );
    // SAFETY: forwarded from the I/O manager.
    let status = unsafe { PcInitializeAdapterDriver(driver, registry_path, Some(add_device)) };
    if !nt_success(status) {
        klog!(
            error,
            "DriverEntry: PcInitializeAdapterDriver failed: {status:#x}"
        );
        return status;
    }
    // SAFETY: `driver` is valid; PortCls has filled MajorFunction/DriverUnload; we wrap the
    // IRPs a control device receives and chain the unload routine.
    unsafe {
        let d = &mut *driver;
        d.MajorFunction[IRP_MJ_CREATE] = Some(dispatch_create);
        d.MajorFunction[IRP_MJ_CLOSE] = Some(dispatch_close);
        d.MajorFunction[IRP_MJ_CLEANUP] = Some(dispatch_cleanup);
        d.MajorFunction[IRP_MJ_DEVICE_CONTROL] = Some(dispatch_device_control);
        PORTCLS_UNLOAD.store(d.DriverUnload.map_or(0, |f| f as usize), Ordering::Release);
        d.DriverUnload = Some(driver_unload);
        let status = control::create_control_device(driver, registry_path);
        if nt_success(status) {
            klog!(
                info,
                "DriverEntry: control device \\\\.\\HardMuteControl ready (muted)"
            );
        } else {
            klog!(error, "DriverEntry: the control device failed: {status:#x}");
        }
        status
    }
}

unsafe extern "C" fn driver_unload(driver: PDRIVER_OBJECT) {
    klog!(info, "DriverUnload");
    // SAFETY: PASSIVE_LEVEL, no more IRPs for the control device.
    unsafe { control::delete_control_device() };
    let unload = PORTCLS_UNLOAD.load(Ordering::Acquire);
    if unload != 0 {
        // SAFETY: the value is PortCls' DRIVER_UNLOAD saved in DriverEntry.
        let unload: unsafe extern "C" fn(PDRIVER_OBJECT) = unsafe { core::mem::transmute(unload) };
        // SAFETY: chained call with the same driver object.
        unsafe { unload(driver) };
    }
}

unsafe extern "C" fn add_device(driver: PDRIVER_OBJECT, pdo: PDEVICE_OBJECT) -> NTSTATUS {
    // SAFETY: forwarded from PnP.
    let status = unsafe { PcAddAdapterDevice(driver, pdo, Some(start_device), MAX_MINIPORTS, 0) };
    if nt_success(status) {
        klog!(info, "AddDevice: adapter device added");
    } else {
        klog!(error, "AddDevice: PcAddAdapterDevice failed: {status:#x}");
    }
    status
}

/// Creates the port, binds the miniport, registers the subdevice. Returns the port (one
/// reference) for the physical connection.
///
/// # Safety
/// StartDevice context (PASSIVE_LEVEL, valid device/IRP/resources).
unsafe fn install_subdevice(
    device: PDEVICE_OBJECT,
    irp: PIRP,
    resources: PRESOURCELIST,
    name: &'static [u16],
    class: &GUID,
    miniport: PUNKNOWN,
) -> Result<PPORT, NTSTATUS> {
    if miniport.is_null() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    let mut port: PPORT = null_mut();
    // SAFETY: valid out pointer and class id.
    let mut status = unsafe { PcNewPort(&mut port, class) };
    if nt_success(status) {
        // SAFETY: `port` is a live IPort; the miniport pointer is a live IUnknown.
        status = unsafe {
            match (*(*port).lpVtbl).Init {
                Some(init) => init(port, device, irp, miniport, null_mut(), resources),
                None => STATUS_NOT_SUPPORTED,
            }
        };
    }
    if nt_success(status) {
        // SAFETY: valid device, NUL-terminated static name, live port.
        status = unsafe { PcRegisterSubdevice(device, name.as_ptr().cast_mut(), port.cast()) };
    }
    // The port holds its own reference to the miniport now (or failed): drop ours.
    // SAFETY: `miniport` is a live IUnknown with our reference.
    unsafe { release(miniport) };
    if nt_success(status) {
        Ok(port)
    } else {
        if !port.is_null() {
            // SAFETY: drop the port we created.
            unsafe { release(port.cast()) };
        }
        Err(status)
    }
}

/// `IUnknown::Release`.
///
/// # Safety
/// `unknown` is a live COM object with a reference owned by the caller.
unsafe fn release(unknown: PUNKNOWN) {
    // SAFETY: per the contract.
    unsafe {
        if let Some(release) = (*(*unknown).lpVtbl).Release {
            release(unknown);
        }
    }
}

unsafe extern "C" fn start_device(
    device: PDEVICE_OBJECT,
    irp: PIRP,
    resources: PRESOURCELIST,
) -> NTSTATUS {
    // SAFETY: StartDevice context.
    let topology = match unsafe {
        install_subdevice(
            device,
            irp,
            resources,
            &TOPOLOGY_NAME,
            &CLSID_PORT_TOPOLOGY,
            topology::create(),
        )
    } {
        Ok(port) => port,
        Err(status) => {
            klog!(
                error,
                "StartDevice: the topology subdevice failed: {status:#x}"
            );
            return status;
        }
    };
    // SAFETY: StartDevice context.
    let wave = match unsafe {
        install_subdevice(
            device,
            irp,
            resources,
            &WAVE_NAME,
            &CLSID_PORT_WAVERT,
            wave::create_miniport(),
        )
    } {
        Ok(port) => port,
        Err(status) => {
            klog!(error, "StartDevice: the wave subdevice failed: {status:#x}");
            // SAFETY: our reference from install_subdevice.
            unsafe { release(topology.cast()) };
            return status;
        }
    };
    // Topology line-out feeds the wave filter's bridge pin.
    // SAFETY: both ports are live and registered.
    let status = unsafe {
        PcRegisterPhysicalConnection(
            device,
            topology.cast(),
            TOPO_PIN_LINEOUT,
            wave.cast(),
            WAVE_PIN_BRIDGE,
        )
    };
    // SAFETY: PortCls keeps its own references to registered subdevices.
    unsafe {
        release(topology.cast());
        release(wave.cast());
    }
    if nt_success(status) {
        klog!(info, "StartDevice: Topology and Wave subdevices registered");
    } else {
        klog!(
            error,
            "StartDevice: PcRegisterPhysicalConnection failed: {status:#x}"
        );
    }
    status
}

/// # Safety
/// I/O manager dispatch contract.
unsafe fn route(major: usize, device: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    if control::is_control_device(device) {
        // SAFETY: an IRP for our control device.
        unsafe { control::dispatch(major, irp) }
    } else {
        // SAFETY: an IRP for the PortCls FDO.
        unsafe { PcDispatchIrp(device, irp) }
    }
}

unsafe extern "C" fn dispatch_create(device: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: dispatch contract.
    unsafe { route(IRP_MJ_CREATE, device, irp) }
}
unsafe extern "C" fn dispatch_close(device: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: dispatch contract.
    unsafe { route(IRP_MJ_CLOSE, device, irp) }
}
unsafe extern "C" fn dispatch_cleanup(device: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: dispatch contract.
    unsafe { route(IRP_MJ_CLEANUP, device, irp) }
}
unsafe extern "C" fn dispatch_device_control(device: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: dispatch contract.
    unsafe { route(IRP_MJ_DEVICE_CONTROL, device, irp) }
}
