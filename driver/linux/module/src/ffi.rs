//! The part of libpipewire-0.3's public C API this module uses, written by hand (no bindgen).
//!
//! Objects PipeWire owns are opaque pointers. The structs this code lays out itself (hooks,
//! event tables, the clock it reads each cycle) are `#[repr(C)]` with their sizes and offsets
//! asserted at compile time for LP64 Linux, and checked against the installed headers by a
//! unit test that compiles a C program (`layout_matches_the_installed_headers`).
//!
//! Every struct here is part of PipeWire's stable public API (`pw_filter_events` grows only at
//! the end and carries a version; `spa_hook`, `spa_io_clock` are unchanged from 0.3.x to 1.4).

#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_void};

/// Opaque PipeWire objects.
#[repr(C)]
pub struct pw_impl_module {
    _p: [u8; 0],
}
#[repr(C)]
pub struct pw_context {
    _p: [u8; 0],
}
#[repr(C)]
pub struct pw_core {
    _p: [u8; 0],
}
#[repr(C)]
pub struct pw_filter {
    _p: [u8; 0],
}
#[repr(C)]
pub struct pw_properties {
    _p: [u8; 0],
}
#[repr(C)]
pub struct spa_pod {
    _p: [u8; 0],
}
#[repr(C)]
pub struct spa_command {
    _p: [u8; 0],
}
#[repr(C)]
pub struct pw_buffer {
    _p: [u8; 0],
}

/// `struct spa_list`: an intrusive doubly linked list node.
#[repr(C)]
#[derive(Debug)]
pub struct spa_list {
    pub next: *mut spa_list,
    pub prev: *mut spa_list,
}

/// `struct spa_callbacks`.
#[repr(C)]
#[derive(Debug)]
pub struct spa_callbacks {
    pub funcs: *const c_void,
    pub data: *mut c_void,
}

/// `struct spa_hook`: storage PipeWire links into an object's listener list. Zeroed before
/// use; must stay at the same address until removed.
#[repr(C)]
#[derive(Debug)]
pub struct spa_hook {
    pub link: spa_list,
    pub cb: spa_callbacks,
    pub removed: Option<unsafe extern "C" fn(*mut spa_hook)>,
    pub priv_: *mut c_void,
}

/// `struct spa_fraction`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct spa_fraction {
    pub num: u32,
    pub denom: u32,
}

/// `struct spa_io_clock` (spa/node/io.h).
#[repr(C)]
#[derive(Debug)]
pub struct spa_io_clock {
    pub flags: u32,
    pub id: u32,
    pub name: [c_char; 64],
    pub nsec: u64,
    pub rate: spa_fraction,
    pub position: u64,
    pub duration: u64,
    pub delay: i64,
    pub rate_diff: f64,
    pub next_nsec: u64,
    pub padding: [u32; 8],
}

/// `struct spa_io_position`, of which only the leading clock is read (the pointer PipeWire
/// passes to `process` is a whole `spa_io_position`, whose first member is the clock).
#[repr(C)]
#[derive(Debug)]
pub struct spa_io_position_head {
    pub clock: spa_io_clock,
}

pub const PW_VERSION_FILTER_EVENTS: u32 = 1;

/// `struct pw_filter_events`, version 1 (0.3.39 and later).
#[repr(C)]
pub struct pw_filter_events {
    pub version: u32,
    pub destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    pub state_changed: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, *const c_char)>,
    pub io_changed: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, u32, *mut c_void, u32)>,
    pub param_changed: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, u32, *const spa_pod)>,
    pub add_buffer: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut pw_buffer)>,
    pub remove_buffer: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut pw_buffer)>,
    pub process: Option<unsafe extern "C" fn(*mut c_void, *mut spa_io_position_head)>,
    pub drained: Option<unsafe extern "C" fn(*mut c_void)>,
    pub command: Option<unsafe extern "C" fn(*mut c_void, *const spa_command)>,
}

pub const PW_VERSION_IMPL_MODULE_EVENTS: u32 = 0;

/// `struct pw_impl_module_events`, version 0.
#[repr(C)]
pub struct pw_impl_module_events {
    pub version: u32,
    pub destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    pub free: Option<unsafe extern "C" fn(*mut c_void)>,
    pub initialized: Option<unsafe extern "C" fn(*mut c_void)>,
    pub registered: Option<unsafe extern "C" fn(*mut c_void)>,
}

/// `enum pw_filter_state`.
pub const PW_FILTER_STATE_ERROR: c_int = -1;
pub const PW_FILTER_STATE_STREAMING: c_int = 3;
/// `enum pw_filter_flags`.
pub const PW_FILTER_FLAG_RT_PROCESS: u32 = 1 << 2;
/// `enum pw_filter_port_flags`.
pub const PW_FILTER_PORT_FLAG_MAP_BUFFERS: u32 = 1 << 0;
/// `enum spa_direction`.
pub const SPA_DIRECTION_INPUT: u32 = 0;
pub const SPA_DIRECTION_OUTPUT: u32 = 1;
/// `PW_TYPE_INTERFACE_Core`.
pub const PW_TYPE_INTERFACE_CORE: &core::ffi::CStr = c"PipeWire:Interface:Core";

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<spa_list>() == 16);
    assert!(size_of::<spa_callbacks>() == 16);
    assert!(size_of::<spa_hook>() == 48);
    assert!(offset_of!(spa_hook, link) == 0);
    assert!(offset_of!(spa_hook, cb) == 16);
    assert!(offset_of!(spa_hook, removed) == 32);
    assert!(offset_of!(spa_hook, priv_) == 40);
    assert!(size_of::<spa_fraction>() == 8);
    assert!(size_of::<spa_io_clock>() == 160);
    assert!(offset_of!(spa_io_clock, nsec) == 72);
    assert!(offset_of!(spa_io_clock, rate) == 80);
    assert!(offset_of!(spa_io_clock, position) == 88);
    assert!(offset_of!(spa_io_clock, duration) == 96);
    assert!(offset_of!(spa_io_clock, next_nsec) == 120);
    assert!(offset_of!(spa_io_position_head, clock) == 0);
    assert!(size_of::<pw_filter_events>() == 80);
    assert!(offset_of!(pw_filter_events, version) == 0);
    assert!(offset_of!(pw_filter_events, destroy) == 8);
    assert!(offset_of!(pw_filter_events, state_changed) == 16);
    assert!(offset_of!(pw_filter_events, io_changed) == 24);
    assert!(offset_of!(pw_filter_events, param_changed) == 32);
    assert!(offset_of!(pw_filter_events, add_buffer) == 40);
    assert!(offset_of!(pw_filter_events, remove_buffer) == 48);
    assert!(offset_of!(pw_filter_events, process) == 56);
    assert!(offset_of!(pw_filter_events, drained) == 64);
    assert!(offset_of!(pw_filter_events, command) == 72);
    assert!(size_of::<pw_impl_module_events>() == 40);
    assert!(offset_of!(pw_impl_module_events, destroy) == 8);
    assert!(offset_of!(pw_impl_module_events, free) == 16);
    assert!(offset_of!(pw_impl_module_events, initialized) == 24);
    assert!(offset_of!(pw_impl_module_events, registered) == 32);
};

#[link(name = "pipewire-0.3")]
extern "C" {
    pub fn pw_impl_module_get_context(module: *mut pw_impl_module) -> *mut pw_context;
    pub fn pw_impl_module_add_listener(
        module: *mut pw_impl_module,
        listener: *mut spa_hook,
        events: *const pw_impl_module_events,
        data: *mut c_void,
    );
    pub fn pw_context_get_object(context: *mut pw_context, type_: *const c_char) -> *mut c_void;
    pub fn pw_context_connect(
        context: *mut pw_context,
        properties: *mut pw_properties,
        user_data_size: usize,
    ) -> *mut pw_core;
    pub fn pw_core_disconnect(core: *mut pw_core) -> c_int;

    /// Variadic: `(key, value, key, value, ..., NULL)`; called with a lone NULL only.
    pub fn pw_properties_new(key: *const c_char, ...) -> *mut pw_properties;
    pub fn pw_properties_new_string(args: *const c_char) -> *mut pw_properties;
    pub fn pw_properties_set(
        props: *mut pw_properties,
        key: *const c_char,
        value: *const c_char,
    ) -> c_int;
    pub fn pw_properties_get(props: *const pw_properties, key: *const c_char) -> *const c_char;
    /// `dict` is a `const struct spa_dict *`; a `pw_properties` begins with its dict.
    pub fn pw_properties_update_keys(
        props: *mut pw_properties,
        dict: *const c_void,
        keys: *const *const c_char,
    ) -> c_int;
    pub fn pw_properties_free(props: *mut pw_properties);

    pub fn pw_filter_new(
        core: *mut pw_core,
        name: *const c_char,
        props: *mut pw_properties,
    ) -> *mut pw_filter;
    pub fn pw_filter_add_listener(
        filter: *mut pw_filter,
        listener: *mut spa_hook,
        events: *const pw_filter_events,
        data: *mut c_void,
    );
    pub fn pw_filter_add_port(
        filter: *mut pw_filter,
        direction: u32,
        flags: u32,
        port_data_size: usize,
        props: *mut pw_properties,
        params: *mut *const spa_pod,
        n_params: u32,
    ) -> *mut c_void;
    pub fn pw_filter_connect(
        filter: *mut pw_filter,
        flags: u32,
        params: *mut *const spa_pod,
        n_params: u32,
    ) -> c_int;
    pub fn pw_filter_get_node_id(filter: *mut pw_filter) -> u32;
    pub fn pw_filter_get_dsp_buffer(port_data: *mut c_void, n_samples: u32) -> *mut c_void;
    pub fn pw_filter_destroy(filter: *mut pw_filter);
}

/// `spa_hook_remove` (an inline function in spa/utils/hook.h, so not exported): unlink the
/// hook from its list if it is linked, then call its `removed` callback.
///
/// # Safety
/// `hook` is null, zeroed (never added), or a hook PipeWire linked into a live list.
pub unsafe fn spa_hook_remove(hook: *mut spa_hook) {
    // SAFETY: per the contract, `hook` is null or valid for reads and writes.
    let Some(h) = (unsafe { hook.as_mut() }) else {
        return;
    };
    if h.link.next.is_null() || h.link.prev.is_null() {
        return; // never added
    }
    // SAFETY: a linked hook's neighbours are live list nodes (spa_list_remove).
    unsafe {
        (*h.link.prev).next = h.link.next;
        (*h.link.next).prev = h.link.prev;
    }
    h.link.next = core::ptr::null_mut();
    h.link.prev = core::ptr::null_mut();
    if let Some(removed) = h.removed {
        // SAFETY: the list owner's callback, called as spa_hook_remove does.
        unsafe { removed(hook) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};
    use std::process::Command;

    /// The hand-written layouts against the C compiler's view of the installed headers.
    #[test]
    fn layout_matches_the_installed_headers() {
        let dir = std::env::temp_dir().join(format!("hm-module-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("layout.c");
        std::fs::write(
            &src,
            r#"#include <stdio.h>
#include <stddef.h>
#include <pipewire/filter.h>
#include <pipewire/impl-module.h>
#include <pipewire/type.h>
#include <spa/node/io.h>
int main(void) {
    printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %d %d %d %d %d\n",
        sizeof(struct spa_hook), offsetof(struct spa_hook, removed), offsetof(struct spa_hook, priv),
        sizeof(struct spa_io_clock), offsetof(struct spa_io_clock, nsec),
        offsetof(struct spa_io_clock, rate), offsetof(struct spa_io_clock, duration),
        offsetof(struct spa_io_position, clock),
        sizeof(struct pw_filter_events), offsetof(struct pw_filter_events, state_changed),
        offsetof(struct pw_filter_events, process), offsetof(struct pw_filter_events, command),
        sizeof(struct pw_impl_module_events), offsetof(struct pw_impl_module_events, registered),
        (size_t)PW_VERSION_FILTER_EVENTS, (size_t)PW_VERSION_IMPL_MODULE_EVENTS,
        (int)PW_FILTER_FLAG_RT_PROCESS, (int)PW_FILTER_PORT_FLAG_MAP_BUFFERS,
        (int)PW_FILTER_STATE_STREAMING, (int)SPA_DIRECTION_OUTPUT, (int)PW_FILTER_STATE_ERROR);
    printf("%s\n", PW_TYPE_INTERFACE_Core);
    return 0;
}
"#,
        )
        .unwrap();
        let cflags = Command::new("pkg-config")
            .args(["--cflags", "libpipewire-0.3"])
            .output()
            .expect("pkg-config (scripts/deps.sh installs it)");
        assert!(cflags.status.success(), "libpipewire-0.3 headers missing");
        let cflags = String::from_utf8(cflags.stdout).unwrap();
        let exe = dir.join("layout");
        let cc = Command::new("cc")
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .args(cflags.split_whitespace())
            .status()
            .expect("a C compiler");
        assert!(cc.success());
        let out = Command::new(&exe).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let nums: Vec<i64> = lines
            .next()
            .unwrap()
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        let ours: Vec<i64> = vec![
            size_of::<spa_hook>() as i64,
            offset_of!(spa_hook, removed) as i64,
            offset_of!(spa_hook, priv_) as i64,
            size_of::<spa_io_clock>() as i64,
            offset_of!(spa_io_clock, nsec) as i64,
            offset_of!(spa_io_clock, rate) as i64,
            offset_of!(spa_io_clock, duration) as i64,
            offset_of!(spa_io_position_head, clock) as i64,
            size_of::<pw_filter_events>() as i64,
            offset_of!(pw_filter_events, state_changed) as i64,
            offset_of!(pw_filter_events, process) as i64,
            offset_of!(pw_filter_events, command) as i64,
            size_of::<pw_impl_module_events>() as i64,
            offset_of!(pw_impl_module_events, registered) as i64,
            i64::from(PW_VERSION_FILTER_EVENTS),
            i64::from(PW_VERSION_IMPL_MODULE_EVENTS),
            i64::from(PW_FILTER_FLAG_RT_PROCESS),
            i64::from(PW_FILTER_PORT_FLAG_MAP_BUFFERS),
            i64::from(PW_FILTER_STATE_STREAMING),
            i64::from(SPA_DIRECTION_OUTPUT),
            i64::from(PW_FILTER_STATE_ERROR),
        ];
        assert_eq!(nums, ours);
        assert_eq!(
            lines.next().unwrap(),
            PW_TYPE_INTERFACE_CORE.to_str().unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn removing_a_hook_unlinks_it_and_tolerates_unlinked_ones() {
        // A two-node ring: head <-> hook, as spa_hook_list_append leaves it.
        let mut head = spa_list {
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
        };
        // SAFETY: all-zero is a valid spa_hook (null pointers, no callback).
        let mut hook: spa_hook = unsafe { core::mem::zeroed() };
        let hp: *mut spa_list = &mut head;
        let kp: *mut spa_list = &mut hook.link;
        head.next = kp;
        head.prev = kp;
        hook.link.next = hp;
        hook.link.prev = hp;
        // SAFETY: a linked hook in a live list.
        unsafe { spa_hook_remove(&mut hook) };
        assert_eq!(head.next, hp, "the list is empty again");
        assert_eq!(head.prev, hp);
        assert!(hook.link.next.is_null());
        // Twice, and a null hook: no effect, no crash.
        // SAFETY: an unlinked hook, and null.
        unsafe {
            spa_hook_remove(&mut hook);
            spa_hook_remove(core::ptr::null_mut());
        }
        assert_eq!(head.next, hp);
    }
}
