//! Fuzzes the Windows control device's IOCTL handling (hardmute-windows-model: what the driver
//! runs on every `IRP_MJ_DEVICE_CONTROL`): the caller's identity from its token, the request
//! parser, the ownership policy and the reply writer, over a sequence of requests from two users.
//!
//! Properties checked on every input:
//! - nothing panics, whatever the code, input bytes, output length, token level or SID bytes;
//! - a reply never claims more bytes than the output buffer the I/O manager gave;
//! - an identification or anonymous token never becomes a caller;
//! - nobody but the recorded owner ever clears hard mute, and only the owner's bridge attaches;
//! - GET_STATE to a non-owner carries nothing but the mute flag and the ownership facts.
#![no_main]

use hardmute_core::control::ControlBlock;
use hardmute_windows_model::ioctl::*;
use hardmute_windows_model::status::*;
use libfuzzer_sys::fuzz_target;

fn sid(rid: u8) -> Vec<u8> {
    let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 1, 2, 3, 1000 + u32::from(rid)] {
        b.extend_from_slice(&sub.to_le_bytes());
    }
    b
}

const CODES: [u32; 4] = [
    IOCTL_HARDMUTE_GET_STATE,
    IOCTL_HARDMUTE_SET_MUTE,
    IOCTL_HARDMUTE_REGISTER_BRIDGE,
    0x0022_2400,
];

fuzz_target!(|data: &[u8]| {
    let owner = UserSid::from_bytes(&sid(0)).unwrap();
    let mut policy = if data.first().is_some_and(|b| b & 1 == 1) {
        ControlPolicy::with_recorded_owner(owner)
    } else {
        ControlPolicy::new()
    };
    let recorded = policy.owner_recorded();
    let ctl = ControlBlock::new(true);
    let mut rest = data.get(1..).unwrap_or(&[]);
    // Each request: [selector, token level, rid / raw-sid flag, out_len lo, out_len hi, len] + input
    while rest.len() >= 6 {
        let (head, tail) = rest.split_at(6);
        let input_len = usize::from(head[5]) % 80;
        let take = input_len.min(tail.len());
        let (input, next) = tail.split_at(take);
        rest = next;
        let code = match head[0] % 5 {
            4 => u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
            i => CODES[usize::from(i)],
        };
        let token = match head[1] % 6 {
            0 => SubjectToken::Primary,
            l => SubjectToken::Impersonation(u32::from(l - 1)),
        };
        let sid_bytes = if head[2] & 0x80 != 0 {
            input.to_vec()
        } else {
            sid(head[2] % 3)
        };
        let caller = match caller_identity(usize::from(head[2] % 4), token, &sid_bytes) {
            Ok(c) => c,
            Err(status) => {
                assert!(status == STATUS_BAD_IMPERSONATION_LEVEL || status == STATUS_ACCESS_DENIED);
                if let SubjectToken::Impersonation(l) = token {
                    assert!(
                        l >= SECURITY_IMPERSONATION || status == STATUS_BAD_IMPERSONATION_LEVEL
                    );
                }
                continue;
            }
        };
        if let SubjectToken::Impersonation(l) = token {
            assert!(l == SECURITY_IMPERSONATION || l == SECURITY_DELEGATION);
        }
        let output_len = usize::from(u16::from_le_bytes([head[3], head[4]])) % 300;
        let locked = head[4] & 0x80 != 0;
        let mut reply = vec![0xAAu8; if locked { 0 } else { output_len }];
        let muted_before = ctl.is_muted();
        let is_owner = recorded && caller.user == owner;
        let call = IoctlCall {
            code,
            input,
            reply: &mut reply,
            output_len,
            output_locked: locked,
        };
        let result = handle_request(&mut policy, &ctl, &caller, call, DriverFacts::default());
        match result {
            Ok(Outcome::Reply(n)) | Ok(Outcome::MuteSet(n)) => assert!(n <= output_len),
            Ok(Outcome::AttachBridge {
                ring_bytes,
                ring_channels,
            }) => {
                assert!(locked && ring_bytes == output_len && (1..=2).contains(&ring_channels));
                if recorded {
                    assert!(is_owner, "only the recorded owner's bridge attaches");
                }
                // The glue would fail the attach half the time: release it then.
                if head[0] & 0x40 != 0 {
                    policy.handle_closed(caller.handle);
                }
            }
            Err(_) => {}
        }
        if recorded && !is_owner {
            assert!(
                !muted_before || ctl.is_muted(),
                "a non-owner cleared hard mute"
            );
        }
        if code == IOCTL_HARDMUTE_GET_STATE && matches!(result, Ok(Outcome::Reply(_))) {
            let state = client::state_reply(&reply).expect("a v1 reply");
            if state.caller_is_owner != OWNERSHIP_CALLER {
                assert_eq!(
                    state,
                    StateReply {
                        hard_mute: state.hard_mute,
                        caller_is_owner: state.caller_is_owner,
                        reserved: state.reserved,
                        ..redacted_state_reply(false, 0, 0)
                    }
                );
            }
        }
    }
});
