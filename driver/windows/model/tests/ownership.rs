//! One owner per machine, bound to a user (invariant 5), under the simulated PortCls: the
//! console user is the owner the installer recorded; a second user (an RDP session or a
//! fast-switched session, or `runas`) registers before or after it and is refused with the
//! distinct "owned by another user" status; it can add mute but never clear it, never feeds
//! audio, and GET_STATE tells it the mute flag only. Identification-level tokens are refused.
mod common;

use common::*;
use hardmute_core::control::{ChangeSource, ControlBlock};
use hardmute_windows_model::format::{SampleFormat, StreamFormat};
use hardmute_windows_model::ioctl::*;
use hardmute_windows_model::status::*;

fn sid_bytes(rid: u32) -> Vec<u8> {
    // S-1-5-21-11-22-33-<rid>
    let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 11, 22, 33, rid] {
        b.extend_from_slice(&sub.to_le_bytes());
    }
    b
}
const CONSOLE: u32 = 1001;
const RDP: u32 = 1002;
const RING: usize = 32 + 9_600 * 4;

fn caller(handle: usize, rid: u32) -> Caller {
    caller_identity(handle, SubjectToken::Primary, &sid_bytes(rid)).unwrap()
}

struct Machine {
    policy: ControlPolicy,
    ctl: ControlBlock,
}

impl Machine {
    fn installed_for(rid: u32) -> Self {
        Machine {
            policy: ControlPolicy::with_recorded_owner(
                UserSid::from_bytes(&sid_bytes(rid)).unwrap(),
            ),
            ctl: ControlBlock::new(true),
        }
    }
    fn call(
        &mut self,
        who: &Caller,
        code: u32,
        input: &[u8],
        out: usize,
        locked: bool,
    ) -> (Result<Outcome, NtStatus>, Vec<u8>) {
        let mut reply = vec![0u8; if locked { 0 } else { out }];
        let facts = DriverFacts {
            stream: Some((true, 48_000, 2)),
        };
        let call = IoctlCall {
            code,
            input,
            reply: &mut reply,
            output_len: out,
            output_locked: locked,
        };
        let r = handle_request(&mut self.policy, &self.ctl, who, call, facts);
        if let Ok(Outcome::MuteSet(_)) = r {
            assert!(self
                .ctl
                .wait_until_effective(|| {}, MUTE_EFFECTIVE_MAX_POLLS));
        }
        (r, reply)
    }
    fn register(&mut self, who: &Caller) -> Result<Outcome, NtStatus> {
        self.call(
            who,
            IOCTL_HARDMUTE_REGISTER_BRIDGE,
            &client::register_bridge(2),
            RING,
            true,
        )
        .0
    }
    fn set_mute(&mut self, who: &Caller, muted: bool) -> Result<Outcome, NtStatus> {
        self.call(
            who,
            IOCTL_HARDMUTE_SET_MUTE,
            &client::set_mute(muted, ChangeSource::Panel),
            16,
            false,
        )
        .0
    }
    fn state(&mut self, who: &Caller) -> StateReply {
        let (r, reply) = self.call(
            who,
            IOCTL_HARDMUTE_GET_STATE,
            &client::get_state(),
            104,
            false,
        );
        assert_eq!(r, Ok(Outcome::Reply(104)));
        client::state_reply(&reply).unwrap()
    }
}

/// Whichever registers first, only the recorded console user's daemon gets the device.
#[test]
fn the_recorded_owner_wins_in_either_registration_order() {
    for rdp_first in [true, false] {
        let mut m = Machine::installed_for(CONSOLE);
        let (console, rdp) = (caller(0x10, CONSOLE), caller(0x20, RDP));
        if rdp_first {
            assert_eq!(
                m.register(&rdp),
                Err(STATUS_RESOURCE_NOT_OWNED),
                "RDP user first"
            );
            assert_eq!(m.set_mute(&rdp, false), Err(STATUS_ACCESS_DENIED));
            assert!(m.ctl.is_muted());
        }
        assert!(m.register(&console).is_ok(), "rdp_first={rdp_first}");
        if !rdp_first {
            assert_eq!(
                m.register(&rdp),
                Err(STATUS_RESOURCE_NOT_OWNED),
                "RDP user second"
            );
        }
        assert_eq!(m.set_mute(&console, false), Ok(Outcome::Reply(16)));
        assert!(!m.ctl.is_muted());
        // The other user may add mute, never clear it; its claimed source is not believed.
        assert_eq!(m.set_mute(&rdp, true), Ok(Outcome::MuteSet(16)));
        assert_eq!(
            m.ctl.snapshot().last_source,
            Some(ChangeSource::OtherClient)
        );
        assert_eq!(m.set_mute(&rdp, false), Err(STATUS_ACCESS_DENIED));
        assert!(m.ctl.is_muted());
        // The console user's daemon going away does not hand the device to the RDP user.
        assert!(m.policy.handle_closed(console.handle));
        assert_eq!(m.register(&rdp), Err(STATUS_RESOURCE_NOT_OWNED));
        assert!(
            m.register(&caller(0x30, CONSOLE)).is_ok(),
            "the owner's restarted daemon"
        );
    }
}

/// Without a recorded owner (a development install) the first registrant binds, and
/// GET_STATE says the binding was not recorded; the other user is still refused distinctly.
#[test]
fn without_a_record_the_first_registrant_binds_in_either_order_and_says_so() {
    for first in [CONSOLE, RDP] {
        let second = if first == CONSOLE { RDP } else { CONSOLE };
        let mut m = Machine {
            policy: ControlPolicy::new(),
            ctl: ControlBlock::new(true),
        };
        let (a, b) = (caller(1, first), caller(2, second));
        assert_eq!(m.state(&a).caller_is_owner, OWNERSHIP_NONE);
        assert!(m.register(&a).is_ok());
        assert_eq!(m.register(&b), Err(STATUS_RESOURCE_NOT_OWNED));
        let sa = m.state(&a);
        assert_eq!(
            (sa.caller_is_owner, sa.reserved),
            (OWNERSHIP_CALLER, OWNERSHIP_BOUND_AT_FIRST_REGISTRATION)
        );
        assert_eq!(m.state(&b).caller_is_owner, OWNERSHIP_OTHER_USER);
    }
}

/// GET_STATE for a non-owner carries the mute flag and nothing that tells when the owner is
/// in a call or when they mute.
#[test]
fn another_user_sees_only_the_mute_flag() {
    let mut m = Machine::installed_for(CONSOLE);
    let (console, rdp) = (caller(1, CONSOLE), caller(2, RDP));
    m.register(&console).unwrap();
    m.set_mute(&console, false).unwrap();
    m.ctl.heartbeat();
    let owner_view = m.state(&console);
    assert_eq!(owner_view.caller_is_owner, OWNERSHIP_CALLER);
    assert_eq!(
        (owner_view.stream_running, owner_view.stream_rate),
        (1, 48_000)
    );
    assert!(owner_view.generation > 0 && owner_view.bridge_heartbeat > 0);
    for muted in [false, true] {
        if muted {
            m.set_mute(&rdp, true).unwrap();
        }
        let view = m.state(&rdp);
        assert_eq!(
            view,
            StateReply {
                abi_version: ABI_VERSION,
                size: 104,
                hard_mute: u32::from(muted),
                caller_is_owner: OWNERSHIP_OTHER_USER,
                ..StateReply::default()
            },
            "muted={muted}"
        );
    }
}

/// A second user's process never feeds audio: its ring is never attached, so what the app
/// reads is the owner's bridge (or zeros), never the intruder's samples.
#[test]
fn another_users_bridge_never_reaches_the_app() {
    let f = StreamFormat {
        rate: 48_000,
        channels: 2,
        sample: SampleFormat::Float32,
    };
    let mut m = Machine::installed_for(CONSOLE);
    m.set_mute(&caller(1, CONSOLE), false).unwrap();
    let intruder_ring = Bridge::new(9_600, 2);
    assert_eq!(m.register(&caller(2, RDP)), Err(STATUS_RESOURCE_NOT_OWNED));
    // The glue publishes a ring only after AttachBridge; refused, the tick has no bridge.
    let mut port = SimPort::open(f, f.byte_rate() / 50, 2);
    for _ in 0..50 {
        intruder_ring.push(&[0.7f32; 96]);
        port.tick_with(QPC_FREQ / 1000, &m.ctl, None, 2);
        assert!(port.engine_read().iter().all(|&b| b == 0));
    }
}

/// Tokens below SecurityImpersonation are someone else's identity to look at, not to use:
/// refused before the request is parsed. Primary tokens and real impersonation pass.
#[test]
fn identification_and_anonymous_tokens_are_refused() {
    let console = sid_bytes(CONSOLE);
    for level in [SECURITY_ANONYMOUS, SECURITY_IDENTIFICATION, 7] {
        assert_eq!(
            caller_identity(1, SubjectToken::Impersonation(level), &console),
            Err(STATUS_BAD_IMPERSONATION_LEVEL),
            "level {level}"
        );
    }
    for token in [
        SubjectToken::Primary,
        SubjectToken::Impersonation(SECURITY_IMPERSONATION),
        SubjectToken::Impersonation(SECURITY_DELEGATION),
    ] {
        assert_eq!(
            caller_identity(1, token, &console).map(|c| c.user.as_bytes().to_vec()),
            Ok(console.clone())
        );
    }
    assert_eq!(
        caller_identity(1, SubjectToken::Primary, &[9, 9]),
        Err(STATUS_ACCESS_DENIED)
    );
    // A squatting pipe server holding the console user's identification token gets no caller
    // to act as; the device stays muted and bound to the console user.
    let mut m = Machine::installed_for(CONSOLE);
    let borrowed = caller_identity(
        5,
        SubjectToken::Impersonation(SECURITY_IDENTIFICATION),
        &console,
    );
    assert_eq!(borrowed, Err(STATUS_BAD_IMPERSONATION_LEVEL));
    assert!(m.ctl.is_muted());
    assert_eq!(
        m.state(&caller(6, RDP)).caller_is_owner,
        OWNERSHIP_OTHER_USER
    );
}
