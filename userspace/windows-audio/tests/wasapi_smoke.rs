//! WASAPI glue against a real MMDevAPI (Windows; headless wine in the Linux cross-check, which
//! usually has no capture device): enumeration, sessions, the device watcher and a refused open
//! must all work or fail cleanly, never crash or hang.
#![cfg(windows)]

use hardmute_windows_audio::capture::CaptureStream;
use hardmute_windows_audio::notify::DeviceWatcher;
use hardmute_windows_audio::{devices, sessions, ComApartment};

#[test]
fn enumeration_sessions_and_watcher_work_with_or_without_inputs() {
    let _com = ComApartment::multithreaded().expect("COM MTA");
    let endpoints = devices::capture_endpoints().expect("EnumAudioEndpoints(eCapture)");
    println!("capture endpoints: {endpoints:?}");
    for e in &endpoints {
        assert!(!e.id.is_empty() && !e.name.is_empty(), "{e:?}");
    }
    assert!(endpoints.iter().filter(|e| e.is_default).count() <= 1);
    let found = sessions::capture_sessions().expect("sessions on every capture endpoint");
    for s in &found {
        assert!(
            endpoints.iter().any(|e| e.id == s.endpoint_id),
            "a session on an endpoint that was not enumerated: {s:?}"
        );
    }
    let own = sessions::process_image(std::process::id()).expect("our own image path");
    assert!(own.to_lowercase().ends_with(".exe"), "{own}");
    assert_eq!(sessions::process_image(0), None);
    let watcher = DeviceWatcher::register(|_| {}).expect("IMMNotificationClient registers");
    drop(watcher);
}

#[test]
fn opening_an_endpoint_that_does_not_exist_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let result = CaptureStream::start(
        "{0.0.1.00000000}.{00000000-0000-0000-0000-000000000000}",
        |_format| |_packet: hardmute_windows_audio::capture::Packet<'_>| {},
        |_end| panic!("on_end must not run for a stream that never started"),
    );
    let err = result.err().expect("no such endpoint");
    println!("refused as expected: {err}");
    assert!(err.context.contains("opening endpoint"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
