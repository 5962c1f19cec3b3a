//! The control device's IOCTL ABI: parsing, rejection of malformed input, and who may
//! clear hard mute.
use hardmute_core::control::{ChangeSource, ControlBlock};
use hardmute_windows_model::ioctl::*;
use hardmute_windows_model::status::*;
use proptest::prelude::*;
use std::mem::size_of;

fn req(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
fn set_mute(muted: u32, source: u32) -> Vec<u8> {
    req(&[ABI_VERSION, 16, muted, source])
}
fn sid(user_rid: u32) -> UserSid {
    // S-1-5-21-1-2-3-<rid>
    let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 1, 2, 3, user_rid] {
        b.extend_from_slice(&sub.to_le_bytes());
    }
    UserSid::from_bytes(&b).unwrap()
}
fn caller(handle: usize, rid: u32) -> Caller {
    Caller {
        handle,
        user: sid(rid),
    }
}

struct Dev {
    policy: ControlPolicy,
    ctl: ControlBlock,
}
impl Dev {
    fn new() -> Self {
        Dev {
            policy: ControlPolicy::new(),
            ctl: ControlBlock::new(true),
        }
    }
    fn call(
        &mut self,
        who: &Caller,
        code: u32,
        input: &[u8],
        out_len: usize,
        locked: bool,
    ) -> (Result<Outcome, NtStatus>, Vec<u8>) {
        let mut reply = vec![0u8; if locked { 0 } else { out_len }];
        let call = IoctlCall {
            code,
            input,
            reply: &mut reply,
            output_len: out_len,
            output_locked: locked,
        };
        let r = handle_request(
            &mut self.policy,
            &self.ctl,
            who,
            call,
            DriverFacts::default(),
        );
        (r, reply)
    }
    fn mute(&mut self, who: &Caller, muted: bool) -> Result<Outcome, NtStatus> {
        self.call(
            who,
            IOCTL_HARDMUTE_SET_MUTE,
            &set_mute(muted as u32, ChangeSource::Hotkey as u32),
            16,
            false,
        )
        .0
    }
    fn register(&mut self, who: &Caller) -> Result<Outcome, NtStatus> {
        self.call(
            who,
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            &req(&[ABI_VERSION, 16, 2, 0]),
            65_536,
            true,
        )
        .0
    }
}

#[test]
fn ioctl_codes_are_the_documented_ctl_codes() {
    // CTL_CODE(FILE_DEVICE_UNKNOWN, 0x901, METHOD_BUFFERED, FILE_READ_ACCESS) etc.
    assert_eq!(IOCTL_HARDMUTE_GET_STATE, 0x0022_6404);
    assert_eq!(IOCTL_HARDMUTE_SET_MUTE, 0x0022_A408);
    assert_eq!(IOCTL_HARDMUTE_REGISTER_BRIDGE, 0x0022_E40E);
}

#[test]
fn well_formed_requests_parse() {
    assert_eq!(
        parse_request(IOCTL_HARDMUTE_GET_STATE, &req(&[1, 8]), 104, false),
        Ok(Request::GetState)
    );
    assert_eq!(
        parse_request(IOCTL_HARDMUTE_SET_MUTE, &set_mute(0, 3), 16, false),
        Ok(Request::SetMute {
            muted: false,
            source: ChangeSource::Hotkey
        })
    );
    assert_eq!(
        parse_request(
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            &req(&[1, 16, 1, 0]),
            8192,
            true
        ),
        Ok(Request::RegisterBridge {
            ring_channels: 1,
            ring_bytes: 8192
        })
    );
}

#[test]
fn malformed_requests_are_rejected_with_ntstatus() {
    /// (code, input, OutputBufferLength, MDL present, expected status, what)
    type Case = (u32, Vec<u8>, usize, bool, NtStatus, &'static str);
    let cases: Vec<Case> = vec![
        (
            0x0022_0000,
            req(&[1, 8]),
            104,
            false,
            STATUS_INVALID_DEVICE_REQUEST,
            "unknown code",
        ),
        (
            IOCTL_HARDMUTE_GET_STATE,
            req(&[1]),
            104,
            false,
            STATUS_BUFFER_TOO_SMALL,
            "short input",
        ),
        (
            IOCTL_HARDMUTE_GET_STATE,
            req(&[1, 8, 0]),
            104,
            false,
            STATUS_INVALID_PARAMETER,
            "long input",
        ),
        (
            IOCTL_HARDMUTE_GET_STATE,
            req(&[2, 8]),
            104,
            false,
            STATUS_REVISION_MISMATCH,
            "future version",
        ),
        (
            IOCTL_HARDMUTE_GET_STATE,
            req(&[0, 8]),
            104,
            false,
            STATUS_REVISION_MISMATCH,
            "version 0",
        ),
        (
            IOCTL_HARDMUTE_GET_STATE,
            req(&[1, 12]),
            104,
            false,
            STATUS_INVALID_PARAMETER,
            "size field lies",
        ),
        (
            IOCTL_HARDMUTE_GET_STATE,
            req(&[1, 8]),
            103,
            false,
            STATUS_BUFFER_TOO_SMALL,
            "reply does not fit",
        ),
        (
            IOCTL_HARDMUTE_SET_MUTE,
            set_mute(2, 3),
            16,
            false,
            STATUS_INVALID_PARAMETER,
            "muted = 2",
        ),
        (
            IOCTL_HARDMUTE_SET_MUTE,
            set_mute(1, 0),
            16,
            false,
            STATUS_INVALID_PARAMETER,
            "source 0",
        ),
        (
            IOCTL_HARDMUTE_SET_MUTE,
            set_mute(1, 1),
            16,
            false,
            STATUS_INVALID_PARAMETER,
            "Startup is the driver's",
        ),
        (
            IOCTL_HARDMUTE_SET_MUTE,
            set_mute(0, 9),
            16,
            false,
            STATUS_INVALID_PARAMETER,
            "FailSafe is the driver's",
        ),
        (
            IOCTL_HARDMUTE_SET_MUTE,
            set_mute(1, 99),
            16,
            false,
            STATUS_INVALID_PARAMETER,
            "unknown source",
        ),
        (
            IOCTL_HARDMUTE_SET_MUTE,
            set_mute(1, 3),
            15,
            false,
            STATUS_BUFFER_TOO_SMALL,
            "reply does not fit",
        ),
        (
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            req(&[1, 16, 2, 0]),
            65_536,
            false,
            STATUS_INVALID_USER_BUFFER,
            "no MDL",
        ),
        (
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            req(&[1, 16, 2, 0]),
            0,
            true,
            STATUS_INVALID_USER_BUFFER,
            "null buffer",
        ),
        (
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            req(&[1, 16, 2, 0]),
            100,
            true,
            STATUS_INVALID_PARAMETER,
            "tiny ring",
        ),
        (
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            req(&[1, 16, 2, 0]),
            MAX_RING_BYTES + 1,
            true,
            STATUS_INVALID_PARAMETER,
            "oversized ring",
        ),
        (
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            req(&[1, 16, 3, 0]),
            8192,
            true,
            STATUS_INVALID_PARAMETER,
            "3 channels",
        ),
        (
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            req(&[1, 16, 0, 0]),
            8192,
            true,
            STATUS_INVALID_PARAMETER,
            "0 channels",
        ),
        (
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            req(&[1, 16, 2, 1]),
            8192,
            true,
            STATUS_INVALID_PARAMETER,
            "reserved flags",
        ),
    ];
    for (code, input, out_len, locked, want, what) in cases {
        assert_eq!(
            parse_request(code, &input, out_len, locked),
            Err(want),
            "{what}"
        );
    }
}

#[test]
fn ring_memory_checks() {
    assert_eq!(ring_slots(0, 8192), Err(STATUS_INVALID_USER_BUFFER));
    assert_eq!(ring_slots(0x1004, 8192), Err(STATUS_DATATYPE_MISALIGNMENT));
    assert_eq!(
        ring_slots(usize::MAX - 7, 8192),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert_eq!(
        ring_slots(0x1000, MAX_RING_BYTES * 2),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert_eq!(ring_slots(0x1000, 8192), Ok((8192 - 32) / 4));
}

#[test]
fn first_bridge_user_becomes_owner_and_only_the_owner_unmutes() {
    let mut dev = Dev::new();
    let (alice, alice_cli, bob) = (caller(1, 1001), caller(2, 1001), caller(3, 1002));
    // Before anyone registered, nobody can unmute (a fresh install starts muted).
    assert_eq!(dev.mute(&alice, false), Err(STATUS_ACCESS_DENIED));
    assert!(dev.ctl.is_muted());
    assert_eq!(
        dev.register(&alice),
        Ok(Outcome::AttachBridge {
            ring_channels: 2,
            ring_bytes: 65_536
        })
    );
    assert_eq!(
        dev.register(&alice_cli),
        Err(STATUS_DEVICE_BUSY),
        "one bridge at a time"
    );
    assert_eq!(
        dev.register(&bob),
        Err(STATUS_RESOURCE_NOT_OWNED),
        "another user: told the device has another owner"
    );
    // Any handle of the owning user may unmute; the reply carries the new generation.
    let (r, reply) = dev.call(
        &alice_cli,
        IOCTL_HARDMUTE_SET_MUTE,
        &set_mute(0, 3),
        16,
        false,
    );
    assert_eq!(r, Ok(Outcome::Reply(16)));
    assert_eq!(
        u64::from_le_bytes(reply[8..16].try_into().unwrap()),
        dev.ctl.snapshot().generation
    );
    assert!(!dev.ctl.is_muted());
    // Bob may add mute but never clear it, and is recorded as another client.
    assert_eq!(
        dev.mute(&bob, true),
        Ok(Outcome::MuteSet(16)),
        "a mute asks the glue to wait for the DPC"
    );
    assert!(dev
        .ctl
        .wait_until_effective(|| {}, MUTE_EFFECTIVE_MAX_POLLS));
    assert_eq!(
        dev.ctl.snapshot().last_source,
        Some(ChangeSource::OtherClient)
    );
    assert_eq!(dev.mute(&bob, false), Err(STATUS_ACCESS_DENIED));
    assert!(dev.ctl.is_muted());
    // The bridge handle goes away: ownership stays with alice's user, bob still cannot take it.
    assert!(dev.policy.handle_closed(1));
    assert!(!dev.policy.handle_closed(1));
    assert_eq!(dev.register(&bob), Err(STATUS_RESOURCE_NOT_OWNED));
    assert!(
        dev.register(&alice_cli).is_ok(),
        "the owner's restarted daemon"
    );
    assert_eq!(dev.mute(&alice, false), Ok(Outcome::Reply(16)));
}

#[test]
fn get_state_reports_the_control_block() {
    let mut dev = Dev::new();
    let alice = caller(1, 1001);
    dev.register(&alice).unwrap();
    dev.mute(&alice, false).unwrap();
    let mut reply = vec![0u8; 200];
    let facts = DriverFacts {
        stream: Some((true, 44_100, 2)),
    };
    let input = req(&[1, 8]);
    let call = IoctlCall {
        code: IOCTL_HARDMUTE_GET_STATE,
        input: &input,
        reply: &mut reply,
        output_len: 200,
        output_locked: false,
    };
    let r = handle_request(&mut dev.policy, &dev.ctl, &alice, call, facts);
    assert_eq!(r, Ok(Outcome::Reply(size_of::<StateReply>())));
    let word = |off: usize| u32::from_le_bytes(reply[off..off + 4].try_into().unwrap());
    let snap = dev.ctl.snapshot();
    assert_eq!((word(0), word(4)), (ABI_VERSION, 104));
    assert_eq!(word(8), 0, "unmuted");
    assert_eq!(word(12), ChangeSource::Hotkey as u32);
    assert_eq!(
        u64::from_le_bytes(reply[16..24].try_into().unwrap()),
        snap.generation
    );
    assert_eq!((word(80), word(84), word(88)), (1, 44_100, 2));
    assert_eq!(
        (word(92), word(96)),
        (1, 1),
        "bridge registered, caller is owner"
    );
    assert!(
        reply[104..].iter().all(|&b| b == 0),
        "nothing written past the reply"
    );
}

#[test]
fn sids_are_validated() {
    assert!(UserSid::from_bytes(&[]).is_none());
    assert!(
        UserSid::from_bytes(&[2, 0, 0, 0, 0, 0, 0, 5]).is_none(),
        "revision 2"
    );
    assert!(
        UserSid::from_bytes(&[1, 16, 0, 0, 0, 0, 0, 5]).is_none(),
        "16 sub-authorities"
    );
    assert!(
        UserSid::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0]).is_none(),
        "truncated"
    );
    let system = UserSid::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0, 0xEE]).unwrap();
    assert_eq!(system.as_bytes().len(), 12);
    assert_ne!(system, sid(18));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn parser_never_panics_and_accepts_only_exact_v1_requests(
        code_pick in 0usize..4, raw_code in any::<u32>(),
        input in proptest::collection::vec(any::<u8>(), 0..40),
        out_len in 0usize..(2 * MAX_RING_BYTES), locked in any::<bool>()
    ) {
        let code = [IOCTL_HARDMUTE_GET_STATE, IOCTL_HARDMUTE_SET_MUTE, IOCTL_HARDMUTE_REGISTER_BRIDGE, raw_code][code_pick];
        if let Ok(r) = parse_request(code, &input, out_len, locked) {
            let word = |off: usize| u32::from_le_bytes(input[off..off + 4].try_into().unwrap());
            prop_assert_eq!(word(0), ABI_VERSION);
            prop_assert_eq!(word(4) as usize, input.len());
            match r {
                Request::GetState => prop_assert!(input.len() == 8 && out_len >= 104),
                Request::SetMute { muted, source } => {
                    prop_assert_eq!(input.len(), 16);
                    prop_assert_eq!(word(8), muted as u32);
                    prop_assert_eq!(word(12), source as u32);
                }
                Request::RegisterBridge { ring_channels, ring_bytes } => {
                    prop_assert!(locked && (1..=2).contains(&ring_channels));
                    prop_assert!((MIN_RING_BYTES..=MAX_RING_BYTES).contains(&ring_bytes));
                }
            }
        }
    }

    #[test]
    fn nobody_but_the_owner_ever_clears_mute(ops in proptest::collection::vec((0usize..4, 0u32..4, any::<bool>()), 1..60)) {
        let mut dev = Dev::new();
        let callers = [caller(1, 1001), caller(2, 1001), caller(3, 1002), caller(4, 18)];
        let mut first_owner: Option<UserSid> = None;
        for (who, op, flag) in ops {
            let c = callers[who];
            let was_muted = dev.ctl.is_muted();
            match op {
                0 => { let _ = dev.register(&c); }
                1 => { dev.policy.handle_closed(c.handle); }
                _ => {
                    let r = dev.mute(&c, flag);
                    if was_muted && !dev.ctl.is_muted() {
                        // An unmute happened: it must have been the bound owner's user.
                        prop_assert!(r.is_ok());
                        prop_assert_eq!(dev.policy.owner(), Some(c.user));
                    }
                }
            }
            // Ownership, once bound, never moves to another user.
            match (first_owner, dev.policy.owner()) {
                (None, now) => first_owner = now,
                (Some(first), now) => prop_assert_eq!(Some(first), now),
            }
        }
    }
}

#[test]
fn client_encoders_round_trip_through_the_driver_side() {
    let mut dev = Dev::new();
    let alice = caller(1, 1001);
    let r = dev
        .call(
            &alice,
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            &client::register_bridge(2),
            8192,
            true,
        )
        .0;
    assert_eq!(
        r,
        Ok(Outcome::AttachBridge {
            ring_channels: 2,
            ring_bytes: 8192
        })
    );
    let (r, reply) = dev.call(
        &alice,
        IOCTL_HARDMUTE_SET_MUTE,
        &client::set_mute(false, ChangeSource::Tray),
        16,
        false,
    );
    assert_eq!(r, Ok(Outcome::Reply(16)));
    assert_eq!(
        client::set_mute_reply(&reply),
        Some(dev.ctl.snapshot().generation)
    );
    let (r, reply) = dev.call(
        &alice,
        IOCTL_HARDMUTE_GET_STATE,
        &client::get_state(),
        104,
        false,
    );
    assert_eq!(r, Ok(Outcome::Reply(104)));
    let state = client::state_reply(&reply).unwrap();
    let snap = dev.ctl.snapshot();
    let mut expected = state_reply(&snap, None, true, true);
    expected.reserved = OWNERSHIP_BOUND_AT_FIRST_REGISTRATION; // no owner recorded in Dev::new
    assert_eq!(state, expected);
    assert_eq!(
        (state.hard_mute, state.last_source),
        (0, ChangeSource::Tray as u32)
    );
    // Wrong sizes or versions decode to nothing.
    assert_eq!(client::state_reply(&reply[..103]), None);
    let mut v2 = reply.clone();
    v2[0] = 2;
    assert_eq!(client::state_reply(&v2), None);
    assert_eq!(client::set_mute_reply(&[0u8; 16]), None);
}
