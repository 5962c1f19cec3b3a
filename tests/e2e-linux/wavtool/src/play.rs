//! hm-play: the fake physical mic's player. A PipeWire playback stream (node
//! `fake-mic-player`, not autoconnected: the harness links it into the fake mic) that writes
//! the generator's signal in its realtime callback, so what it plays follows the marker flag
//! within one quantum (a pipe into pw-cat would lag by its whole buffer).
//!
//!   hm-play [--flag F --drained D] [--impulse] [--node-name NAME]
//!     noise (1 s periodic, see signal.rs); while file F exists: the marker (+-0.9 square wave);
//!     once F is gone and DRAIN_FRAMES of noise have been played after it, file D is created.
//!     --impulse: a 0.9 click every 0.25 s (latency measurement).
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pipewire as pw;
use pw::{properties::properties, spa};

#[path = "signal.rs"]
mod signal;
use signal::*;

/// Noise frames after the marker stops before every marker sample has left the graph: the
/// driver (the fake mic) delays its input by one cycle, so three quanta of 1024 are plenty.
const DRAIN_FRAMES: u64 = 3072;

struct Shared {
    marker: AtomicBool,
    since_marker: AtomicU64,
}

fn main() -> Result<(), pw::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |n: &str| {
        args.iter()
            .position(|a| a == n)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let (flag, drained) = (opt("--flag"), opt("--drained"));
    let impulse = args.iter().any(|a| a == "--impulse");
    // A second player (another fake source) needs its own node name.
    let node_name = opt("--node-name")
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| "fake-mic-player".to_owned());
    let shared = Arc::new(Shared {
        marker: AtomicBool::new(false),
        since_marker: AtomicU64::new(u64::MAX / 2),
    });

    if let Some(flag) = flag {
        let shared = shared.clone();
        std::thread::spawn(move || loop {
            if flag.exists() {
                if !shared.marker.swap(true, Ordering::SeqCst) {
                    shared.since_marker.store(0, Ordering::SeqCst);
                    if let Some(d) = &drained {
                        let _ = std::fs::remove_file(d);
                    }
                }
            } else {
                shared.marker.store(false, Ordering::SeqCst);
                if let Some(d) = &drained {
                    if shared.since_marker.load(Ordering::SeqCst) >= DRAIN_FRAMES && !d.exists() {
                        let _ = std::fs::write(d, b"");
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        });
    }

    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None)?;
    let context = pw::context::ContextRc::new(
        &mainloop,
        Some(properties! { "config.name" => "client-rt.conf" }),
    )?;
    let core = context.connect_rc(None)?;
    let stream = pw::stream::StreamBox::new(
        &core,
        &node_name,
        properties! {
            *pw::keys::MEDIA_TYPE => "Audio",
            *pw::keys::MEDIA_CATEGORY => "Playback",
            *pw::keys::NODE_NAME => node_name.as_str(),
            "node.autoconnect" => "false",
            "node.latency" => "1024/48000",
        },
    )?;
    let reference = reference();
    let mut n: u64 = 0;
    let _listener = stream
        .add_local_listener_with_user_data(())
        .process(move |stream, _| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                return;
            };
            let requested = buffer.requested() as usize;
            let datas = buffer.datas_mut();
            let Some(data) = datas.first_mut() else {
                return;
            };
            let marker = shared.marker.load(Ordering::SeqCst);
            let frames = match data.data() {
                Some(slice) => {
                    let frames =
                        (slice.len() / 4).min(if requested > 0 { requested } else { usize::MAX });
                    for (i, out) in slice.chunks_exact_mut(4).take(frames).enumerate() {
                        let k = n + i as u64;
                        let v = if impulse {
                            if k.is_multiple_of(RATE as u64 / 4) {
                                0.9
                            } else {
                                0.0
                            }
                        } else if marker {
                            if (k / 24).is_multiple_of(2) {
                                MARKER_LEVEL
                            } else {
                                -MARKER_LEVEL
                            }
                        } else {
                            reference[(k % PERIOD as u64) as usize]
                        };
                        out.copy_from_slice(&v.to_le_bytes());
                    }
                    frames
                }
                None => 0,
            };
            n += frames as u64;
            if !marker {
                shared
                    .since_marker
                    .fetch_add(frames as u64, Ordering::SeqCst);
            }
            let chunk = data.chunk_mut();
            *chunk.offset_mut() = 0;
            *chunk.stride_mut() = 4;
            *chunk.size_mut() = (frames * 4) as u32;
        })
        .register()?;

    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(RATE as u32);
    info.set_channels(1);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    position[0] = spa::sys::SPA_AUDIO_CHANNEL_MONO;
    info.set_position(position);
    let values: Vec<u8> = pw::spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &pw::spa::pod::Value::Object(pw::spa::pod::Object {
            type_: spa::sys::SPA_TYPE_OBJECT_Format,
            id: spa::sys::SPA_PARAM_EnumFormat,
            properties: info.into(),
        }),
    )
    .expect("format pod")
    .0
    .into_inner();
    let mut params = [spa::pod::Pod::from_bytes(&values).expect("format pod")];
    stream.connect(
        spa::utils::Direction::Output,
        None,
        pw::stream::StreamFlags::MAP_BUFFERS | pw::stream::StreamFlags::RT_PROCESS,
        &mut params,
    )?;
    mainloop.run();
    Ok(())
}
