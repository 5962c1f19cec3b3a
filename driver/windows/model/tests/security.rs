//! The control device's DACL, parsed back from its self-relative bytes.
use hardmute_windows_model::security::*;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

#[test]
fn security_descriptor_grants_exactly_system_admins_and_interactive() {
    let sd = &CONTROL_DEVICE_SD[..];
    assert_eq!(sd[0], 1, "revision");
    let control = u16_at(sd, 2);
    assert_eq!(control & 0x8000, 0x8000, "self-relative");
    assert_eq!(control & 0x0004, 0x0004, "DACL present");
    assert_eq!(
        control & 0x1000,
        0x1000,
        "DACL protected (P): no inherited ACEs"
    );
    assert_eq!(
        (u32_at(sd, 4), u32_at(sd, 8), u32_at(sd, 12)),
        (0, 0, 0),
        "no owner/group/SACL"
    );
    let acl = u32_at(sd, 16) as usize;
    assert_eq!(sd[acl], 2, "ACL revision");
    assert_eq!(
        acl + u16_at(sd, acl + 2) as usize,
        sd.len(),
        "ACL fills the rest"
    );
    let count = u16_at(sd, acl + 4);
    let mut at = acl + 8;
    let mut grants = Vec::new();
    for _ in 0..count {
        assert_eq!(sd[at], 0, "ACCESS_ALLOWED");
        let size = u16_at(sd, at + 2) as usize;
        let sid = &sd[at + 8..at + size];
        assert_eq!(
            sid.len(),
            8 + 4 * sid[1] as usize,
            "SID length matches its sub-authority count"
        );
        grants.push((sid.to_vec(), u32_at(sd, at + 4)));
        at += size;
    }
    assert_eq!(at, sd.len());
    assert_eq!(
        grants,
        vec![
            (SID_LOCAL_SYSTEM.to_vec(), GENERIC_ALL),
            (SID_ADMINISTRATORS.to_vec(), GENERIC_ALL),
            (SID_INTERACTIVE.to_vec(), GENERIC_READ | GENERIC_WRITE),
        ]
    );
    assert_eq!(SDDL, "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;IU)");
}
