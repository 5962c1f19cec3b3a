//! Manual check on a Mac with the plug-in installed:
//! `cargo run -p hardmute-backend-macos --example bridge_probe -- [seconds]`
//! prints the plug-in's devices, the hard-mute state, the capture choice and who is listening, then
//! (with a duration) runs the bridge that long. Off macOS it only says so.

#[cfg(target_os = "macos")]
fn main() {
    use hardmute_backend_macos::macos::{input_devices, input_processes, Bridge, HardMute};
    use hardmute_backend_macos::policy::{choose_capture_device, listeners};
    let hm = match HardMute::find() {
        Ok(hm) => hm,
        Err(e) => {
            eprintln!("HardMute plug-in not found: {e:?}");
            std::process::exit(1);
        }
    };
    println!(
        "devices: mic {} feed {}; hard mute = {:?}",
        hm.mic,
        hm.feed,
        hm.is_muted()
    );
    let devices = input_devices().unwrap_or_default();
    for d in &devices {
        println!(
            "input {} {:?} uid={} default={}",
            d.id, d.name, d.uid, d.is_default
        );
    }
    let me = std::process::id() as i32;
    match input_processes() {
        Ok(p) => {
            for (proc_, how) in listeners(&p, me) {
                println!("listening: pid {} {} {:?}", proc_.pid, proc_.bundle_id, how);
            }
        }
        Err(e) => println!("process list unavailable (macOS 14+): {e:?}"),
    }
    let Some(mic) = choose_capture_device(&devices, None) else {
        eprintln!("no physical input");
        std::process::exit(1);
    };
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if secs > 0 {
        println!("feeding {} into HardMute for {secs} s", mic.name);
        let _bridge = Bridge::start(mic.id, &hm, true).expect("bridge");
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
}

#[cfg(not(target_os = "macos"))]
fn main() {
    eprintln!("bridge_probe runs on macOS only");
}
