//! The bridge heartbeat on Windows: the tick bumps `bridge_heartbeat` for every tick fed from
//! the bridge ring (the bridge cannot write the kernel's control block), GET_STATE reports it,
//! and a bridge that dies leaves a flat heartbeat and exact zeros.
mod common;

use common::*;
use hardmute_core::control::ControlBlock;
use hardmute_windows_model::format::{SampleFormat, StreamFormat};
use hardmute_windows_model::ioctl::{self, client, Caller, ControlPolicy, DriverFacts, IoctlCall};

const ONE_MS: u64 = QPC_FREQ / 1000;
const F: StreamFormat = StreamFormat {
    rate: 48_000,
    channels: 2,
    sample: SampleFormat::Float32,
};

/// What the daemon's GET_STATE poll sees (the daemon runs as the recorded owner).
fn get_state(ctl: &ControlBlock) -> ioctl::StateReply {
    let caller = Caller {
        handle: 1,
        user: ioctl::UserSid::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]).unwrap(),
    };
    let mut reply = [0u8; 104];
    let outcome = ioctl::handle_request(
        &mut ControlPolicy::with_recorded_owner(caller.user),
        ctl,
        &caller,
        IoctlCall {
            code: ioctl::IOCTL_HARDMUTE_GET_STATE,
            input: &client::get_state(),
            reply: &mut reply,
            output_len: 104,
            output_locked: false,
        },
        DriverFacts {
            stream: Some((true, 48_000, 2)),
        },
    );
    assert_eq!(outcome, Ok(ioctl::Outcome::Reply(104)));
    client::state_reply(&reply).unwrap()
}

#[test]
fn the_heartbeat_follows_bridge_audio_and_a_dead_bridge_leaves_it_flat_with_zeros() {
    let ctl = ControlBlock::new(false); // unmuted: apps would hear the bridge
    let mut port = SimPort::open(F, F.byte_rate() / 50, 2);
    let bridge = Bridge::new(9_600 * 2, 2);
    assert_eq!(get_state(&ctl).bridge_heartbeat, 0);

    // A live bridge: 10 ms of audio every 10 ms. Every 1 ms tick takes some.
    for i in 0..200 {
        if i % 10 == 0 {
            assert_eq!(bridge.push(&[0.5f32; 960]), 960);
        }
        port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
    }
    let live = get_state(&ctl).bridge_heartbeat;
    assert_eq!(live, 200, "one beat per tick fed from the ring");
    assert_eq!(live, ctl.snapshot().bridge_heartbeat);
    let heard = decode(F.sample, &port.engine_read());
    assert!(heard.contains(&0.5), "the bridge's audio arrived");

    // The bridge process dies without a word: its ring stays attached until the driver
    // notices the cancelled IRP, but nothing is written any more. The backlog (what was
    // pushed and not yet read) drains, then the heartbeat stays flat and apps get zeros.
    port.engine_read();
    for _ in 0..20 {
        port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
    }
    port.engine_read();
    let drained = get_state(&ctl);
    let underruns_before = drained.underruns;
    for _ in 0..300 {
        port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
    }
    let dead = get_state(&ctl);
    assert_eq!(
        dead.bridge_heartbeat, drained.bridge_heartbeat,
        "no bridge audio, no beat"
    );
    assert_eq!(
        dead.underruns - underruns_before,
        300,
        "every tick ran short"
    );
    let after = decode(F.sample, &port.engine_read());
    assert_eq!(after.len(), 300 * 48 * 2);
    assert!(after.iter().all(|s| s.to_bits() == 0), "exact zeros");

    // Detached (the driver completed the cancelled IRP): the same, through NoBridge.
    for _ in 0..100 {
        port.tick_with(ONE_MS, &ctl, None, 2);
    }
    assert_eq!(get_state(&ctl).bridge_heartbeat, dead.bridge_heartbeat);
    assert!(decode(F.sample, &port.engine_read())
        .iter()
        .all(|s| s.to_bits() == 0));

    // A new bridge registers and feeds: the heartbeat moves again.
    let bridge = Bridge::new(9_600 * 2, 2);
    bridge.push(&[0.25f32; 960]);
    for _ in 0..5 {
        port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
    }
    assert_eq!(get_state(&ctl).bridge_heartbeat, dead.bridge_heartbeat + 5);
}

#[test]
fn a_muted_stream_still_beats_so_mute_never_looks_like_a_dead_bridge() {
    use hardmute_core::control::{Authority, ChangeSource};
    let ctl = ControlBlock::new(false);
    let mut port = SimPort::open(F, F.byte_rate() / 50, 2);
    let bridge = Bridge::new(9_600 * 2, 2);
    ctl.set_muted(true, ChangeSource::Cli, Authority::Owner)
        .unwrap();
    // Muted: delivery keeps draining the ring (invariant 3), so the heartbeat keeps moving and
    // the daemon's BridgeWatch sees a live bridge; apps get exact zeros all the while.
    for i in 0..100 {
        if i % 10 == 0 {
            bridge.push(&[0.5f32; 960]);
        }
        port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
    }
    assert_eq!(get_state(&ctl).bridge_heartbeat, 100);
    let heard = decode(F.sample, &port.engine_read());
    assert!(!heard.is_empty() && heard.iter().all(|s| s.to_bits() == 0));
}
