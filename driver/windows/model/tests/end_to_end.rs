//! The whole Windows data and control path under simulation: the owner's daemon registers
//! its bridge ring and unmutes through the IOCTL layer, audio flows through the timer tick,
//! another user mutes, and from the very next tick apps read exact zeros; the bridge
//! handle closing detaches the ring and the stream keeps delivering zeros (fail closed).
mod common;

use common::*;
use hardmute_core::control::{ChangeSource, ControlBlock};
use hardmute_windows_model::format::{SampleFormat, StreamFormat};
use hardmute_windows_model::ioctl::*;
use hardmute_windows_model::status::*;

fn user(rid: u32) -> UserSid {
    let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 7, 8, 9, rid] {
        b.extend_from_slice(&sub.to_le_bytes());
    }
    UserSid::from_bytes(&b).unwrap()
}

fn ioctl(
    policy: &mut ControlPolicy,
    ctl: &ControlBlock,
    who: &Caller,
    code: u32,
    words: &[u32],
    out_len: usize,
    locked: bool,
) -> Result<Outcome, NtStatus> {
    let input: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut reply = vec![0u8; if locked { 0 } else { out_len }];
    let call = IoctlCall {
        code,
        input: &input,
        reply: &mut reply,
        output_len: out_len,
        output_locked: locked,
    };
    let r = handle_request(policy, ctl, who, call, DriverFacts::default());
    if let Ok(Outcome::MuteSet(_)) = r {
        assert!(ctl.wait_until_effective(|| {}, MUTE_EFFECTIVE_MAX_POLLS));
    }
    r
}

#[test]
fn owner_unmutes_other_user_mutes_and_the_next_tick_is_silent() {
    let ctl = ControlBlock::new(true);
    let mut policy = ControlPolicy::new();
    let daemon = Caller {
        handle: 0x1000,
        user: user(1001),
    };
    let intruder = Caller {
        handle: 0x2000,
        user: user(1002),
    };
    let f = StreamFormat {
        rate: 48_000,
        channels: 2,
        sample: SampleFormat::Pcm16,
    };
    let mut port = SimPort::open(f, f.byte_rate() / 50, 2);
    let bridge = Bridge::new(9_600, 2);

    let r = ioctl(
        &mut policy,
        &ctl,
        &daemon,
        IOCTL_HARDMUTE_REGISTER_BRIDGE,
        &[ABI_VERSION, 16, 2, 0],
        32 + 9_600 * 4,
        true,
    );
    assert_eq!(
        r,
        Ok(Outcome::AttachBridge {
            ring_channels: 2,
            ring_bytes: 32 + 9_600 * 4
        })
    );
    // The intruder cannot unmute, even before the owner did anything.
    let unmute = [ABI_VERSION, 16, 0, ChangeSource::Panel as u32];
    assert_eq!(
        ioctl(
            &mut policy,
            &ctl,
            &intruder,
            IOCTL_HARDMUTE_SET_MUTE,
            &unmute,
            16,
            false
        ),
        Err(STATUS_ACCESS_DENIED)
    );
    assert_eq!(
        ioctl(
            &mut policy,
            &ctl,
            &daemon,
            IOCTL_HARDMUTE_SET_MUTE,
            &unmute,
            16,
            false
        ),
        Ok(Outcome::Reply(16))
    );

    let tone: Vec<f32> = (0..96)
        .map(|i| if i % 4 < 2 { 0.5 } else { -0.5 })
        .collect();
    let mut loud_frames = 0;
    for _ in 0..100 {
        bridge.push(&tone);
        port.tick_with(QPC_FREQ / 1000, &ctl, Some(&bridge), 2);
        loud_frames += decode(f.sample, &port.engine_read())
            .iter()
            .filter(|v| v.abs() > 0.1)
            .count();
    }
    assert!(
        loud_frames > 5_000,
        "audio reaches the app while unmuted ({loud_frames})"
    );

    let mute = [ABI_VERSION, 16, 1, ChangeSource::Hotkey as u32];
    assert_eq!(
        ioctl(
            &mut policy,
            &ctl,
            &intruder,
            IOCTL_HARDMUTE_SET_MUTE,
            &mute,
            16,
            false
        ),
        Ok(Outcome::MuteSet(16))
    );
    for _ in 0..100 {
        bridge.push(&tone);
        port.tick_with(QPC_FREQ / 1000, &ctl, Some(&bridge), 2);
        assert!(
            port.engine_read().iter().all(|&b| b == 0),
            "every byte after the mute is zero"
        );
    }

    // The daemon's handle closes (process died): the glue detaches the ring.
    assert!(policy.handle_closed(daemon.handle));
    assert_eq!(
        ioctl(
            &mut policy,
            &ctl,
            &daemon,
            IOCTL_HARDMUTE_SET_MUTE,
            &unmute,
            16,
            false
        ),
        Ok(Outcome::Reply(16)),
        "the owner's user, from a new handle, may still unmute"
    );
    for _ in 0..50 {
        port.tick_with(QPC_FREQ / 1000, &ctl, None, 1);
        assert!(
            port.engine_read().iter().all(|&b| b == 0),
            "no bridge: zeros, never stale audio"
        );
    }
    assert_eq!(
        port.stream.frames_written(),
        250 * 48,
        "the clock never stopped"
    );
}
