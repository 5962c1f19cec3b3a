//! Default-device and endpoint-state notifications (IMMNotificationClient).

use crate::devices::enumerator;
use crate::{AudioError, AudioResult, DeviceEvent};
use windows::core::{implement, PCWSTR};
use windows::Win32::Foundation::PROPERTYKEY;
use windows::Win32::Media::Audio::{
    eCapture, eConsole, EDataFlow, ERole, IMMDeviceEnumerator, IMMNotificationClient,
    IMMNotificationClient_Impl, DEVICE_STATE,
};

type Sink = Box<dyn Fn(DeviceEvent) + Send + Sync>;

#[implement(IMMNotificationClient)]
struct Client {
    sink: Sink,
}

fn text(p: &PCWSTR) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null device ids from MMDevAPI are NUL-terminated and live for the call.
    unsafe { p.to_string() }.unwrap_or_default()
}

// The callbacks run on an MMDevAPI worker thread and must return quickly: they only forward.
impl IMMNotificationClient_Impl for Client_Impl {
    fn OnDeviceStateChanged(&self, id: &PCWSTR, state: DEVICE_STATE) -> windows::core::Result<()> {
        (self.sink)(DeviceEvent::StateChanged {
            id: text(id),
            state: state.0,
        });
        Ok(())
    }
    fn OnDeviceAdded(&self, id: &PCWSTR) -> windows::core::Result<()> {
        (self.sink)(DeviceEvent::Added(text(id)));
        Ok(())
    }
    fn OnDeviceRemoved(&self, id: &PCWSTR) -> windows::core::Result<()> {
        (self.sink)(DeviceEvent::Removed(text(id)));
        Ok(())
    }
    fn OnDefaultDeviceChanged(
        &self,
        flow: EDataFlow,
        role: ERole,
        id: &PCWSTR,
    ) -> windows::core::Result<()> {
        if flow == eCapture && role == eConsole {
            let id = text(id);
            (self.sink)(DeviceEvent::DefaultCaptureChanged(
                (!id.is_empty()).then_some(id),
            ));
        }
        Ok(())
    }
    fn OnPropertyValueChanged(
        &self,
        _id: &PCWSTR,
        _key: &PROPERTYKEY,
    ) -> windows::core::Result<()> {
        Ok(())
    }
}

/// Forwards endpoint notifications to a sink for as long as it lives.
pub struct DeviceWatcher {
    enumerator: IMMDeviceEnumerator,
    client: IMMNotificationClient,
}

impl DeviceWatcher {
    /// The caller's thread must be in a COM apartment. `sink` runs on MMDevAPI's thread.
    pub fn register(sink: impl Fn(DeviceEvent) + Send + Sync + 'static) -> AudioResult<Self> {
        let enumerator = enumerator()?;
        let client: IMMNotificationClient = Client {
            sink: Box::new(sink),
        }
        .into();
        // SAFETY: registers a live COM object; unregistered in Drop before it is released.
        unsafe { enumerator.RegisterEndpointNotificationCallback(&client) }
            .map_err(|e| AudioError::from_win("RegisterEndpointNotificationCallback", e))?;
        Ok(DeviceWatcher { enumerator, client })
    }
}

impl Drop for DeviceWatcher {
    fn drop(&mut self) {
        // SAFETY: the client registered in `register`.
        let _ = unsafe {
            self.enumerator
                .UnregisterEndpointNotificationCallback(&self.client)
        };
    }
}
