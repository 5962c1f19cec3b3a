//! The HAL property listener's body, driven the way the HAL calls it (an array of addresses,
//! on another thread): it only signals, and allocates nothing.

use hardmute_backend_macos::policy::{
    hal_event, on_properties_changed, HalSignals, PropertyAddress, SELECTOR_DEFAULT_INPUT,
    SELECTOR_DEVICES, SELECTOR_DEVICE_IS_ALIVE,
};

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

fn address(selector: u32) -> PropertyAddress {
    PropertyAddress {
        selector,
        scope: u32::from_be_bytes(*b"glob"),
        element: 0,
    }
}

#[test]
fn the_listener_signals_without_allocating() {
    let signals = HalSignals::new();
    let batch = [
        address(SELECTOR_DEVICES),
        address(u32::from_be_bytes(*b"nsrt")),
        address(SELECTOR_DEFAULT_INPUT),
    ];
    let alive = [address(SELECTOR_DEVICE_IS_ALIVE)];
    let before = hardmute_alloc_counter::heap_ops_on_this_thread();
    for _ in 0..1000 {
        // SAFETY: the arrays hold the counts passed.
        unsafe {
            on_properties_changed(&signals, batch.len() as u32, batch.as_ptr());
            on_properties_changed(&signals, alive.len() as u32, alive.as_ptr());
            on_properties_changed(&signals, 0, core::ptr::null());
        }
    }
    let heap_ops = hardmute_alloc_counter::heap_ops_on_this_thread() - before;
    assert_eq!(heap_ops, 0, "the listener allocated");
    assert_eq!(
        signals.take(),
        hal_event::DEFAULT_INPUT | hal_event::DEVICE_LIST | hal_event::CAPTURED_DEVICE_DIED
    );
}

#[test]
fn signals_from_the_hal_thread_reach_the_daemon_thread() {
    let signals = std::sync::Arc::new(HalSignals::new());
    let hal = {
        let signals = signals.clone();
        std::thread::spawn(move || {
            let a = [address(SELECTOR_DEFAULT_INPUT)];
            // SAFETY: one valid address.
            unsafe { on_properties_changed(&signals, 1, a.as_ptr()) };
        })
    };
    hal.join().unwrap();
    assert_eq!(signals.take(), hal_event::DEFAULT_INPUT);
    assert_eq!(signals.take(), 0);
}
