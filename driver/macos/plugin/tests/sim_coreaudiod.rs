//! A simulated coreaudiod: drives the plug-in exactly the way the HAL does — through the exported
//! factory, the driver reference it returns, and the function pointers in that vtable — with a fake
//! host interface (storage, property-change notices, configuration-change requests), fake
//! CoreFoundation objects and a simulated host clock.
//!
//! What it proves on Linux: the property protocol (sizes, errors, +1 CF references), the IO cycle
//! (exact zeros while muted, the gate at delivery, realtime safety), the clock, and who may clear
//! hard mute. What it cannot prove: that coreaudiod itself behaves as modelled (see driver/macos/README.md).
#![cfg(any(not(target_vendor = "apple"), feature = "sim"))]
#![allow(non_upper_case_globals)] // Apple's constant names in patterns

use hardmute_macos_plugin::abi::*;
use hardmute_macos_plugin::cf::{fake, Cf, CoreFoundation};
use hardmute_macos_plugin::clock::sim::SimClock;
use hardmute_macos_plugin::clock::HostClock;
use hardmute_macos_plugin::consts::*;
use hardmute_macos_plugin::identity::fake as processes;
use hardmute_macos_plugin::model::{self, *};
use hardmute_macos_plugin::oslog::{self, fake as oslog_records};
use hardmute_macos_plugin::AudioServerPlugIn_Factory;
use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::{Mutex, MutexGuard};

// ---- a counting allocator: proves the IO calls never allocate ----------------------------------

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

// ---- which plug-in: the Linux build of the crate, or the shipped x86_64 slice -----------------

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
use hardmute_macos_loader::shim::{self, libsystem as macsys, Category};

type Factory = unsafe extern "C" fn(CFTypeRef, CFTypeRef) -> *mut c_void;

/// The plug-in under test. `linux`: this crate compiled for the host, with the CF fake and the
/// simulated clock. `shipped`: the x86_64 slice of the universal bundle the cross-check linked,
/// mapped by `hardmute-macos-loader` (its own Apple code: `cf/apple.rs` calling CF through the
/// shim, the Mach clock through the shim's settable `mach_absolute_time`).
#[derive(Clone, Copy)]
struct PlugIn {
    factory: Factory,
    shipped: bool,
}

/// What a measured piece of IO did.
struct Measured {
    /// Heap operations: the test binary's counting allocator (the Linux plug-in), plus the
    /// shim's allocation calls (the shipped plug-in's malloc/free/thread-local blocks).
    heap_ops: u64,
    /// Shim calls other than mach_absolute_time and memory functions, by symbol (os_log calls
    /// included, on the Linux build too).
    forbidden: Vec<(&'static str, u64)>,
    /// mach_absolute_time calls seen by the shim.
    clock_reads: u64,
}

impl PlugIn {
    fn linux() -> Self {
        PlugIn {
            factory: AudioServerPlugIn_Factory,
            shipped: false,
        }
    }

    /// The shipped slice, or None (with a note) when the cross-check has not built it here.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn shipped() -> Option<Self> {
        let Some(image) = hardmute_macos_loader::shipped() else {
            eprintln!(
                "SKIPPED: HARDMUTE_MACHO_PLUGIN is unset (`cargo xtask cross-check macos macos-run` \
                 sets it to the bundle it just linked)"
            );
            return None;
        };
        Some(PlugIn {
            factory: image
                .factory()
                .expect("the image exports AudioServerPlugIn_Factory"),
            shipped: true,
        })
    }

    fn set_clock(&self, t: u64) {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            return macsys::set_mach_time(t);
        }
        SimClock::set(t)
    }
    fn advance_clock(&self, ticks: u64) {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            return macsys::advance_mach_time(ticks);
        }
        SimClock::advance(ticks)
    }
    fn clock_now(&self) -> u64 {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            return macsys::mach_time();
        }
        SimClock::now()
    }
    /// The host clock's rate. The shipped plug-in reads mach_timebase_info once (OnceLock), so
    /// its rate is the shim's fixed 125/3 (24 MHz, Apple silicon's), which this asserts.
    fn set_ticks_per_second(&self, t: u64) {
        if self.shipped {
            assert_eq!(t, 24_000_000, "the shim's timebase is 24 MHz");
            return;
        }
        SimClock::set_ticks_per_second(t)
    }

    /// The kernel's process table as the plug-in reads it (`proc_pidinfo` in the shipped bytes).
    fn set_process(&self, pid: PidT, uid: u32) {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            return macsys::set_process(pid, uid);
        }
        processes::set_process(pid, uid)
    }
    fn remove_process(&self, pid: PidT) {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            return macsys::remove_process(pid);
        }
        processes::remove_process(pid)
    }
    /// The installer's owner record (the shipped bytes read the file `identity::OWNER_FILE`).
    fn set_recorded_owner(&self, uid: Option<u32>) {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            let text = uid.map(|u| format!("{u}\n"));
            return macsys::set_file(
                hardmute_macos_plugin::identity::OWNER_FILE,
                text.as_deref().map(str::as_bytes),
            );
        }
        processes::set_recorded_owner(uid)
    }

    /// CoreFoundation calls the shim has seen (always 0 for the Linux build, which calls the
    /// fake directly).
    fn cf_calls(&self) -> u64 {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            let zero = shim::Counts::zero();
            return shim::Counts::now().category_since(&zero, Category::Cf);
        }
        0
    }

    fn measure(&self, f: impl FnOnce()) -> Measured {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.shipped {
            let before = shim::Counts::now();
            let host = hardmute_alloc_counter::heap_ops(f).1;
            let after = shim::Counts::now();
            let calls = after.since(&before);
            return Measured {
                heap_ops: host + after.category_since(&before, Category::Alloc),
                // Allowed in IO: reading the Mach clock (the commpage on macOS) and plain
                // memory functions. Everything else (allocation, locks, CF, anything that enters
                // the kernel, even errno bookkeeping) counts.
                forbidden: calls
                    .iter()
                    .filter(|(name, c, _)| {
                        !(*name == "_mach_absolute_time" || *c == Category::Memory)
                    })
                    .map(|(name, _, n)| (*name, *n))
                    .collect(),
                clock_reads: after.of(shim::S::mach_absolute_time)
                    - before.of(shim::S::mach_absolute_time),
            };
        }
        // The Linux build logs through the os_log fake, which counts every call (scenarios run
        // one at a time: `SERIAL`).
        let log_calls = oslog_records::calls();
        let heap_ops = hardmute_alloc_counter::heap_ops(f).1;
        let log_calls = oslog_records::calls() - log_calls;
        Measured {
            heap_ops,
            forbidden: if log_calls > 0 {
                vec![("os_log", log_calls)]
            } else {
                Vec::new()
            },
            clock_reads: 0,
        }
    }
}

// ---- CF helpers: every reference in these tests is a live fake-CF object or null ---------------

fn release(r: CFTypeRef) {
    // SAFETY: see above.
    unsafe { Cf::release(r) }
}
fn retain(r: CFTypeRef) -> CFTypeRef {
    // SAFETY: see above.
    unsafe { Cf::retain(r) }
}
fn as_bool(r: CFTypeRef) -> Option<bool> {
    // SAFETY: see above.
    unsafe { Cf::plist_as_bool(r) }
}

// ---- the fake host -----------------------------------------------------------------------------

#[derive(Default)]
struct HostState {
    storage: Vec<(String, usize /* +1 CFTypeRef */)>,
    changed: Vec<(AudioObjectID, AudioObjectPropertySelector)>,
    config_requests: Vec<(AudioObjectID, u64)>,
}
static HOST_STATE: Mutex<Option<HostState>> = Mutex::new(None);

fn host_state<R>(f: impl FnOnce(&mut HostState) -> R) -> R {
    f(HOST_STATE
        .lock()
        .unwrap()
        .get_or_insert_with(Default::default))
}

unsafe extern "C" fn host_properties_changed(
    _h: AudioServerPlugInHostRef,
    object: AudioObjectID,
    n: u32,
    addrs: *const AudioObjectPropertyAddress,
) -> OSStatus {
    // SAFETY: the plug-in passes `n` valid addresses.
    let addrs = unsafe { std::slice::from_raw_parts(addrs, n as usize) };
    host_state(|s| {
        s.changed
            .extend(addrs.iter().map(|a| (object, a.mSelector)))
    });
    0
}
unsafe extern "C" fn host_copy_from_storage(
    _h: AudioServerPlugInHostRef,
    key: CFTypeRef,
    out: *mut CFTypeRef,
) -> OSStatus {
    let key = fake::string_value(key).expect("storage key is a CFString");
    let found = host_state(|s| s.storage.iter().find(|(k, _)| *k == key).map(|(_, v)| *v));
    // SAFETY: valid out-pointer from the plug-in.
    unsafe { out.write(found.map_or(null(), |v| retain(v as CFTypeRef))) };
    if found.is_some() {
        0
    } else {
        kAudioHardwareUnspecifiedError
    }
}
unsafe extern "C" fn host_write_to_storage(
    _h: AudioServerPlugInHostRef,
    key: CFTypeRef,
    data: CFTypeRef,
) -> OSStatus {
    let key = fake::string_value(key).expect("storage key is a CFString");
    let data = retain(data) as usize;
    let old = host_state(|s| {
        let old = s
            .storage
            .iter()
            .position(|(k, _)| *k == key)
            .map(|i| s.storage.remove(i).1);
        s.storage.push((key, data));
        old
    });
    if let Some(old) = old {
        release(old as CFTypeRef);
    }
    0
}
unsafe extern "C" fn host_delete_from_storage(
    _h: AudioServerPlugInHostRef,
    _key: CFTypeRef,
) -> OSStatus {
    0
}
unsafe extern "C" fn host_request_config_change(
    _h: AudioServerPlugInHostRef,
    device: AudioObjectID,
    action: u64,
    _info: *mut c_void,
) -> OSStatus {
    host_state(|s| s.config_requests.push((device, action)));
    0
}

static HOST: AudioServerPlugInHostInterface = AudioServerPlugInHostInterface {
    PropertiesChanged: Some(host_properties_changed),
    CopyFromStorage: Some(host_copy_from_storage),
    WriteToStorage: Some(host_write_to_storage),
    DeleteFromStorage: Some(host_delete_from_storage),
    RequestDeviceConfigurationChange: Some(host_request_config_change),
};

// ---- the simulated HAL -------------------------------------------------------------------------

/// The plug-in is one static instance per process, as inside coreaudiod: tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

const DAEMON_PID: PidT = 4242;
const APP_PID: PidT = 100;
/// The user the installer recorded as the owner; the daemon and the app run as this user.
const OWNER_UID: u32 = 501;
/// A second login session's user (fast user switching).
const OTHER_UID: u32 = 502;
const OTHER_DAEMON_PID: PidT = 5353;
const DAEMON_CLIENT: u32 = 7;
const APP_CLIENT: u32 = 8;

struct Hal {
    p: PlugIn,
    driver: AudioServerPlugInDriverRef,
    vt: &'static AudioServerPlugInDriverInterface,
    /// How many os_log records existed when this test got its turn: later ones are its own
    /// (tests waiting for `SERIAL` log nothing; the one before it has dropped its turn).
    log_mark: usize,
    _serial: MutexGuard<'static, ()>,
}

fn addr(selector: u32) -> AudioObjectPropertyAddress {
    addr_in(selector, kAudioObjectPropertyScopeGlobal)
}
fn addr_in(selector: u32, scope: u32) -> AudioObjectPropertyAddress {
    AudioObjectPropertyAddress {
        mSelector: selector,
        mScope: scope,
        mElement: kAudioObjectPropertyElementMain,
    }
}

fn client_info(client: u32, pid: PidT, bundle: CFTypeRef) -> AudioServerPlugInClientInfo {
    AudioServerPlugInClientInfo {
        mClientID: client,
        mProcessID: pid,
        mIsNativeEndian: 1,
        mBundleID: bundle,
    }
}

impl Hal {
    /// Loads the plug-in like coreaudiod: factory(kAudioServerPlugInTypeUUID), QueryInterface for
    /// the driver interface, Initialize with the host interface. `stored` is the persisted state.
    fn load(p: PlugIn, stored: Option<bool>) -> Hal {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let log_mark = oslog_records::records().len();
        Self::users(p, Some(OWNER_UID));
        host_state(|s| {
            for (_, v) in s.storage.drain(..) {
                release(v as CFTypeRef);
            }
            s.changed.clear();
            s.config_requests.clear();
        });
        if let Some(m) = stored {
            let key = Cf::string(model::STORAGE_KEY_HARD_MUTE);
            // SAFETY: plain call of our own host function.
            unsafe { host_write_to_storage(&HOST, key, Cf::boolean(m)) };
            release(key);
        }
        let type_uuid = fake::uuid(kAudioServerPlugInTypeUUID);
        let cf_calls = p.cf_calls();
        // SAFETY: the factory takes a CFUUID; the fake one is live.
        let unknown = unsafe { (p.factory)(null(), type_uuid) };
        release(type_uuid);
        if p.shipped {
            // The shipped factory reads the UUID through CoreFoundation (CFGetTypeID,
            // CFUUIDGetUUIDBytes): seen by the shim, so these are the loaded bytes running.
            assert!(
                p.cf_calls() > cf_calls,
                "the shipped factory made no CF call"
            );
        }
        assert!(
            !unknown.is_null(),
            "factory refused the AudioServerPlugIn type"
        );
        // SAFETY: a CFPlugIn instance points at a pointer to its vtable.
        let vt: &'static AudioServerPlugInDriverInterface =
            unsafe { &**(unknown as *const *const AudioServerPlugInDriverInterface) };
        let mut iface: *mut c_void = null_mut();
        let driver_uuid = CFUUIDBytes {
            bytes: kAudioServerPlugInDriverInterfaceUUID,
        };
        // SAFETY: calling through the plug-in's vtable as the host does.
        assert_eq!(
            unsafe { (vt.QueryInterface)(unknown, driver_uuid, &mut iface) },
            S_OK
        );
        // SAFETY: as above; balance the factory's reference (the host keeps QueryInterface's).
        unsafe { (vt.Release)(unknown) };
        let driver = iface as AudioServerPlugInDriverRef;
        // SAFETY: as above.
        assert_eq!(unsafe { (vt.Initialize)(driver, &HOST) }, 0);
        Hal {
            p,
            driver,
            vt,
            log_mark,
            _serial: serial,
        }
    }

    /// The kernel's process table and the installer's record, as the plug-in will read them.
    fn users(p: PlugIn, recorded_owner: Option<u32>) {
        p.set_recorded_owner(recorded_owner);
        p.set_process(DAEMON_PID, OWNER_UID);
        p.set_process(APP_PID, OWNER_UID);
        p.set_process(OTHER_DAEMON_PID, OTHER_UID);
    }

    /// Initialize again (coreaudiod restarting) with another owner record.
    fn reload_with_owner(&self, recorded_owner: Option<u32>) {
        Self::users(self.p, recorded_owner);
        // SAFETY: calling through the plug-in's vtable as the host does.
        assert_eq!(unsafe { (self.vt.Initialize)(self.driver, &HOST) }, 0);
    }

    fn add_client(&self, device: AudioObjectID, client: u32, pid: PidT, bundle: &str) -> OSStatus {
        let b = Cf::string(bundle);
        let info = client_info(client, pid, b);
        // SAFETY: vtable call with a valid client info.
        let st = unsafe { (self.vt.AddDeviceClient)(self.driver, device, &info) };
        release(b); // the plug-in must have retained what it keeps
        st
    }
    fn remove_client(&self, device: AudioObjectID, client: u32, pid: PidT) -> OSStatus {
        let info = client_info(client, pid, null());
        // SAFETY: vtable call with a valid client info.
        unsafe { (self.vt.RemoveDeviceClient)(self.driver, device, &info) }
    }
    fn has(&self, object: AudioObjectID, a: &AudioObjectPropertyAddress) -> bool {
        // SAFETY: vtable call.
        unsafe { (self.vt.HasProperty)(self.driver, object, 0, a) != 0 }
    }
    fn settable(
        &self,
        object: AudioObjectID,
        a: &AudioObjectPropertyAddress,
    ) -> Result<bool, OSStatus> {
        let mut out: Boolean = 9;
        // SAFETY: vtable call.
        let st = unsafe { (self.vt.IsPropertySettable)(self.driver, object, 0, a, &mut out) };
        if st == 0 {
            assert!(out <= 1);
            Ok(out == 1)
        } else {
            Err(st)
        }
    }
    fn size_q(
        &self,
        object: AudioObjectID,
        a: &AudioObjectPropertyAddress,
        q: &[u8],
    ) -> Result<u32, OSStatus> {
        let mut size = u32::MAX;
        // SAFETY: vtable call.
        let st = unsafe {
            (self.vt.GetPropertyDataSize)(
                self.driver,
                object,
                0,
                a,
                q.len() as u32,
                q.as_ptr().cast(),
                &mut size,
            )
        };
        if st == 0 {
            Ok(size)
        } else {
            Err(st)
        }
    }
    fn size(&self, object: AudioObjectID, a: &AudioObjectPropertyAddress) -> Result<u32, OSStatus> {
        self.size_q(object, a, &[])
    }
    /// GetPropertyData into a buffer of `capacity` bytes; returns the bytes used.
    fn get_q(
        &self,
        object: AudioObjectID,
        a: &AudioObjectPropertyAddress,
        q: &[u8],
        capacity: u32,
    ) -> Result<Vec<u8>, OSStatus> {
        let mut buf = vec![0xA5u8; capacity as usize + 16];
        let mut used = u32::MAX;
        // SAFETY: vtable call; the buffer holds `capacity` bytes (plus a guard zone).
        let st = unsafe {
            (self.vt.GetPropertyData)(
                self.driver,
                object,
                0,
                a,
                q.len() as u32,
                q.as_ptr().cast(),
                capacity,
                &mut used,
                buf.as_mut_ptr().cast(),
            )
        };
        if st != 0 {
            return Err(st);
        }
        assert!(
            used <= capacity,
            "outDataSize {used} beyond inDataSize {capacity}"
        );
        assert!(
            buf[capacity as usize..].iter().all(|b| *b == 0xA5),
            "wrote past inDataSize"
        );
        buf.truncate(used as usize);
        Ok(buf)
    }
    fn get(
        &self,
        object: AudioObjectID,
        a: &AudioObjectPropertyAddress,
        capacity: u32,
    ) -> Result<Vec<u8>, OSStatus> {
        self.get_q(object, a, &[], capacity)
    }
    fn get_u32(&self, object: AudioObjectID, selector: u32) -> u32 {
        let b = self.get(object, &addr(selector), 4).unwrap();
        u32::from_ne_bytes(b.try_into().unwrap())
    }
    fn get_f64(&self, object: AudioObjectID, selector: u32) -> f64 {
        let b = self.get(object, &addr(selector), 8).unwrap();
        f64::from_ne_bytes(b.try_into().unwrap())
    }
    fn get_ids(&self, object: AudioObjectID, a: &AudioObjectPropertyAddress) -> Vec<u32> {
        let n = self.size(object, a).unwrap();
        let b = self.get(object, a, n).unwrap();
        b.chunks(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }
    /// A CF-valued property: returns (+1 reference, contents); the caller releases.
    fn get_cf(&self, object: AudioObjectID, selector: u32) -> CFTypeRef {
        let b = self.get(object, &addr(selector), 8).unwrap();
        usize::from_ne_bytes(b.try_into().unwrap()) as CFTypeRef
    }
    fn get_string(&self, object: AudioObjectID, selector: u32) -> String {
        let r = self.get_cf(object, selector);
        let s = fake::string_value(r).expect("a CFString");
        release(r);
        s
    }
    fn hard_mute(&self) -> bool {
        let r = self.get_cf(MIC_DEVICE_ID, model::HARD_MUTE_SELECTOR);
        let v = as_bool(r).expect("hard mute is a boolean property list");
        release(r);
        v
    }
    fn set_raw(
        &self,
        object: AudioObjectID,
        pid: PidT,
        a: &AudioObjectPropertyAddress,
        data: &[u8],
    ) -> OSStatus {
        // SAFETY: vtable call with a buffer of the stated size.
        unsafe {
            (self.vt.SetPropertyData)(
                self.driver,
                object,
                pid,
                a,
                0,
                null(),
                data.len() as u32,
                data.as_ptr().cast(),
            )
        }
    }
    fn set_hard_mute(&self, pid: PidT, muted: bool) -> OSStatus {
        let v = Cf::boolean(muted);
        let st = self.set_raw(
            MIC_DEVICE_ID,
            pid,
            &addr(model::HARD_MUTE_SELECTOR),
            &(v as usize).to_ne_bytes(),
        );
        release(v);
        st
    }
    fn start(&self, device: AudioObjectID, client: u32) -> OSStatus {
        // SAFETY: vtable call.
        unsafe { (self.vt.StartIO)(self.driver, device, client) }
    }
    fn stop(&self, device: AudioObjectID, client: u32) -> OSStatus {
        // SAFETY: vtable call.
        unsafe { (self.vt.StopIO)(self.driver, device, client) }
    }
    fn zero_time_stamp(&self, device: AudioObjectID) -> (f64, u64, u64) {
        let (mut s, mut h, mut seed) = (-1.0, 0u64, 0u64);
        // SAFETY: vtable call with valid out-pointers.
        assert_eq!(
            unsafe {
                (self.vt.GetZeroTimeStamp)(self.driver, device, 0, &mut s, &mut h, &mut seed)
            },
            0
        );
        (s, h, seed)
    }
    fn will_do(&self, device: AudioObjectID, op: u32) -> (bool, bool) {
        let (mut w, mut p) = (9u8, 9u8);
        // SAFETY: vtable call with valid out-pointers.
        assert_eq!(
            unsafe { (self.vt.WillDoIOOperation)(self.driver, device, 0, op, &mut w, &mut p) },
            0
        );
        (w == 1, p == 1)
    }
    /// One IO operation as the HAL runs it: Begin, Do (in place on `buf`), End.
    fn io(
        &self,
        device: AudioObjectID,
        stream: AudioObjectID,
        client: u32,
        op: u32,
        frames: u32,
        buf: &mut [f32],
    ) -> OSStatus {
        let cycle = AudioServerPlugInIOCycleInfo {
            mIOCycleCounter: 1,
            mNominalIOBufferFrameSize: frames,
            ..Default::default()
        };
        // SAFETY: vtable calls; `buf` holds `frames` frames of the stream's format.
        unsafe {
            let st = (self.vt.BeginIOOperation)(self.driver, device, client, op, frames, &cycle);
            if st != 0 {
                return st;
            }
            let st = (self.vt.DoIOOperation)(
                self.driver,
                device,
                stream,
                client,
                op,
                frames,
                &cycle,
                buf.as_mut_ptr().cast(),
                null_mut(),
            );
            if st != 0 {
                return st;
            }
            (self.vt.EndIOOperation)(self.driver, device, client, op, frames, &cycle)
        }
    }
    fn write_mix(&self, buf: &mut [f32], channels: usize) -> OSStatus {
        let frames = (buf.len() / channels) as u32;
        self.io(
            FEED_DEVICE_ID,
            FEED_STREAM_ID,
            DAEMON_CLIENT,
            kAudioServerPlugInIOOperationWriteMix,
            frames,
            buf,
        )
    }
    fn read_input(&self, buf: &mut [f32], channels: usize) -> OSStatus {
        let frames = (buf.len() / channels) as u32;
        self.io(
            MIC_DEVICE_ID,
            MIC_STREAM_ID,
            APP_CLIENT,
            kAudioServerPlugInIOOperationReadInput,
            frames,
            buf,
        )
    }
    /// The host side of a configuration change: perform every pending request.
    fn perform_pending(&self) -> Vec<(AudioObjectID, u64)> {
        let pending = host_state(|s| std::mem::take(&mut s.config_requests));
        for (device, action) in &pending {
            // SAFETY: vtable call.
            assert_eq!(
                unsafe {
                    (self.vt.PerformDeviceConfigurationChange)(
                        self.driver,
                        *device,
                        *action,
                        null_mut(),
                    )
                },
                0
            );
        }
        pending
    }
    /// Daemon on the feed, an app on the microphone, both running.
    fn with_clients_running(self) -> Self {
        assert_eq!(
            self.add_client(
                FEED_DEVICE_ID,
                DAEMON_CLIENT,
                DAEMON_PID,
                model::DAEMON_BUNDLE_ID
            ),
            0
        );
        assert_eq!(
            self.add_client(MIC_DEVICE_ID, APP_CLIENT, APP_PID, "us.zoom.xos"),
            0
        );
        assert_eq!(self.start(MIC_DEVICE_ID, APP_CLIENT), 0);
        assert_eq!(self.start(FEED_DEVICE_ID, DAEMON_CLIENT), 0);
        self
    }
    fn stop_all(&self) {
        while self.stop(MIC_DEVICE_ID, APP_CLIENT) == 0 {}
        while self.stop(FEED_DEVICE_ID, DAEMON_CLIENT) == 0 {}
    }
}

impl Drop for Hal {
    fn drop(&mut self) {
        self.stop_all();
        for (d, c, p) in [
            (FEED_DEVICE_ID, DAEMON_CLIENT, DAEMON_PID),
            (MIC_DEVICE_ID, APP_CLIENT, APP_PID),
        ] {
            self.remove_client(d, c, p);
        }
        // SAFETY: balance QueryInterface's reference.
        unsafe { (self.vt.Release)(self.driver.cast()) };
    }
}

/// Sample values that carry their sequence number (exact in f32 below 2^24) and, in their sign,
/// whether they were captured before (-) or after (+) the last unmute. The gate's fade-in scales by
/// a gain in [0, 1], which keeps the sign: a negative sample after an unmute is a leak, exactly.
fn seq_block(next: &mut u32, samples: usize, sign: f32) -> Vec<f32> {
    (0..samples)
        .map(|_| {
            *next += 1;
            sign * *next as f32
        })
        .collect()
}
const BEFORE: f32 = -1.0;
const AFTER: f32 = 1.0;

// ---- tests -------------------------------------------------------------------------------------

fn factory_and_iunknown_follow_cfplugin_rules(p: PlugIn) {
    let hal = Hal::load(p, None);
    // Wrong type: no instance.
    let other = fake::uuid([7; 16]);
    // SAFETY: factory with a live fake CFUUID.
    assert!(unsafe { (p.factory)(null(), other) }.is_null());
    release(other);
    // Unknown interface: E_NOINTERFACE and a null out-pointer.
    let mut out: *mut c_void = std::ptr::dangling_mut::<c_void>();
    // SAFETY: vtable calls.
    unsafe {
        assert_eq!(
            (hal.vt.QueryInterface)(hal.driver.cast(), CFUUIDBytes { bytes: [3; 16] }, &mut out),
            E_NOINTERFACE
        );
        assert!(out.is_null());
        assert_eq!(
            (hal.vt.QueryInterface)(
                hal.driver.cast(),
                CFUUIDBytes {
                    bytes: IUnknownUUID
                },
                &mut out
            ),
            S_OK
        );
        assert_eq!(out, hal.driver.cast());
        let n = (hal.vt.AddRef)(hal.driver.cast());
        assert_eq!((hal.vt.Release)(hal.driver.cast()), n - 1);
        (hal.vt.Release)(hal.driver.cast()); // the IUnknown query's reference
                                             // A foreign driver reference is rejected, not trusted.
        let mut bogus: *const AudioServerPlugInDriverInterface = hal.vt;
        let bogus_ref = &mut bogus as *mut _ as AudioServerPlugInDriverRef;
        assert_eq!(
            (hal.vt.StartIO)(bogus_ref, MIC_DEVICE_ID, 1),
            kAudioHardwareBadObjectError
        );
        // This plug-in publishes fixed devices only.
        assert_eq!(
            (hal.vt.CreateDevice)(hal.driver, null(), null(), null_mut()),
            kAudioHardwareUnsupportedOperationError
        );
    }
}

fn every_property_of_every_object_answers_consistently(p: PlugIn) {
    let hal = Hal::load(p, Some(true));
    let live_before = fake::live_objects();
    let objects = [
        PLUGIN_ID,
        MIC_DEVICE_ID,
        MIC_STREAM_ID,
        FEED_DEVICE_ID,
        FEED_STREAM_ID,
    ];
    let mut checked = 0;
    for &obj in &objects {
        let o = model::object(obj).unwrap();
        for sel in model::selectors(o) {
            let a = addr(sel);
            assert!(hal.has(obj, &a), "object {obj} lacks {sel:08x}");
            assert!(hal.settable(obj, &a).is_ok());
            if sel == kAudioPlugInPropertyTranslateUIDToDevice {
                continue; // needs a qualifier: checked below
            }
            let size = hal
                .size(obj, &a)
                .unwrap_or_else(|e| panic!("size of {sel:08x} on {obj}: {e}"));
            let full = hal.get(obj, &a, size).unwrap();
            assert_eq!(
                full.len() as u32,
                size,
                "outDataSize for {sel:08x} on {obj}"
            );
            let is_cf = matches!(
                sel,
                kAudioObjectPropertyName
                    | kAudioObjectPropertyManufacturer
                    | kAudioDevicePropertyDeviceUID
                    | kAudioDevicePropertyModelUID
                    | kAudioPlugInPropertyResourceBundle
            ) || sel == model::HARD_MUTE_SELECTOR;
            if is_cf {
                // +1 reference: one more than the plug-in's own, and ours to release.
                let r = usize::from_ne_bytes(full.clone().try_into().unwrap()) as CFTypeRef;
                if fake::string_value(r).is_some() {
                    assert_eq!(fake::ref_count(r), 2, "{sel:08x} on {obj} not returned +1");
                }
                release(r);
            }
            let is_list = matches!(
                sel,
                kAudioObjectPropertyOwnedObjects
                    | kAudioObjectPropertyControlList
                    | kAudioObjectPropertyCustomPropertyInfoList
                    | kAudioPlugInPropertyDeviceList
                    | kAudioDevicePropertyStreams
                    | kAudioDevicePropertyRelatedDevices
                    | kAudioDevicePropertyAvailableNominalSampleRates
                    | kAudioStreamPropertyAvailableVirtualFormats
                    | kAudioStreamPropertyAvailablePhysicalFormats
            );
            if size > 0 {
                let short = hal.get(obj, &a, size - 1);
                if is_list {
                    // Lists return the whole elements that fit.
                    let got = short.unwrap();
                    assert!(got.len() < size as usize && size as usize - got.len() <= 56);
                } else {
                    assert_eq!(
                        short.unwrap_err(),
                        kAudioHardwareBadPropertySizeError,
                        "{sel:08x} on {obj}"
                    );
                    if is_cf {
                        // The refused call took no reference: a fresh +1 is again exactly one
                        // above the plug-in's own.
                        let again = hal.get(obj, &a, size).unwrap();
                        let r = usize::from_ne_bytes(again.try_into().unwrap()) as CFTypeRef;
                        if fake::string_value(r).is_some() {
                            assert_eq!(
                                fake::ref_count(r),
                                2,
                                "{sel:08x} on {obj} leaked a reference"
                            );
                        }
                        release(r);
                    }
                }
            }
            checked += 1;
        }
        // Unknown selector.
        let bogus = addr(fourcc(b"zzzz"));
        assert!(!hal.has(obj, &bogus));
        assert_eq!(
            hal.size(obj, &bogus).unwrap_err(),
            kAudioHardwareUnknownPropertyError
        );
        assert_eq!(
            hal.get(obj, &bogus, 64).unwrap_err(),
            kAudioHardwareUnknownPropertyError
        );
        assert_eq!(
            hal.settable(obj, &bogus).unwrap_err(),
            kAudioHardwareUnknownPropertyError
        );
        assert_eq!(
            hal.set_raw(obj, 0, &bogus, &[0; 8]),
            kAudioHardwareUnknownPropertyError
        );
    }
    assert!(checked >= 45, "walked only {checked} properties");
    // Unknown object.
    assert!(!hal.has(99, &addr(kAudioObjectPropertyClass)));
    assert_eq!(
        hal.size(99, &addr(kAudioObjectPropertyClass)).unwrap_err(),
        kAudioHardwareBadObjectError
    );
    // Every +1 reference was released: nothing leaked.
    assert_eq!(fake::live_objects(), live_before);
}

fn the_object_tree_and_key_values_are_what_coreaudiod_expects(p: PlugIn) {
    let hal = Hal::load(p, Some(true));
    assert_eq!(
        hal.get_ids(PLUGIN_ID, &addr(kAudioPlugInPropertyDeviceList)),
        vec![MIC_DEVICE_ID, FEED_DEVICE_ID]
    );
    assert_eq!(
        hal.get_u32(PLUGIN_ID, kAudioObjectPropertyClass),
        kAudioPlugInClassID
    );
    assert_eq!(
        hal.get_u32(MIC_DEVICE_ID, kAudioObjectPropertyClass),
        kAudioDeviceClassID
    );
    assert_eq!(
        hal.get_u32(MIC_STREAM_ID, kAudioObjectPropertyClass),
        kAudioStreamClassID
    );
    assert_eq!(
        hal.get_u32(MIC_STREAM_ID, kAudioObjectPropertyOwner),
        MIC_DEVICE_ID
    );
    assert_eq!(
        hal.get_string(MIC_DEVICE_ID, kAudioObjectPropertyName),
        "HardMute Microphone"
    );
    assert_eq!(
        hal.get_string(MIC_DEVICE_ID, kAudioDevicePropertyDeviceUID),
        model::MIC_UID
    );
    // Streams by scope: the microphone has input only, the feed output only.
    assert_eq!(
        hal.get_ids(
            MIC_DEVICE_ID,
            &addr_in(kAudioDevicePropertyStreams, kAudioObjectPropertyScopeInput)
        ),
        vec![MIC_STREAM_ID]
    );
    assert!(hal
        .get_ids(
            MIC_DEVICE_ID,
            &addr_in(kAudioDevicePropertyStreams, kAudioObjectPropertyScopeOutput)
        )
        .is_empty());
    assert_eq!(
        hal.get_ids(
            FEED_DEVICE_ID,
            &addr_in(kAudioDevicePropertyStreams, kAudioObjectPropertyScopeOutput)
        ),
        vec![FEED_STREAM_ID]
    );
    assert_eq!(hal.get_u32(MIC_STREAM_ID, kAudioStreamPropertyDirection), 1);
    assert_eq!(
        hal.get_u32(FEED_STREAM_ID, kAudioStreamPropertyDirection),
        0
    );
    assert_eq!(
        hal.get_u32(MIC_STREAM_ID, kAudioStreamPropertyTerminalType),
        kAudioStreamTerminalTypeMicrophone
    );
    // The feed is hidden and never a default device; the microphone may be the default input.
    assert_eq!(hal.get_u32(FEED_DEVICE_ID, kAudioDevicePropertyIsHidden), 1);
    assert_eq!(
        hal.get_u32(FEED_DEVICE_ID, kAudioDevicePropertyDeviceCanBeDefaultDevice),
        0
    );
    assert_eq!(hal.get_u32(MIC_DEVICE_ID, kAudioDevicePropertyIsHidden), 0);
    assert_eq!(
        hal.get_u32(MIC_DEVICE_ID, kAudioDevicePropertyDeviceCanBeDefaultDevice),
        1
    );
    // No controls at all: no standard mute control anybody could clear.
    assert!(hal
        .get_ids(MIC_DEVICE_ID, &addr(kAudioObjectPropertyControlList))
        .is_empty());
    // Formats: f32 at 44.1/48/96 kHz, mono and stereo.
    let n = hal
        .size(
            MIC_STREAM_ID,
            &addr(kAudioStreamPropertyAvailableVirtualFormats),
        )
        .unwrap();
    assert_eq!(
        n as usize,
        6 * std::mem::size_of::<AudioStreamRangedDescription>()
    );
    let raw = hal
        .get(
            MIC_STREAM_ID,
            &addr(kAudioStreamPropertyAvailableVirtualFormats),
            n,
        )
        .unwrap();
    let mut seen = Vec::new();
    for c in raw.chunks(56) {
        // SAFETY: 56 bytes of AudioStreamRangedDescription written by the plug-in.
        let d: AudioStreamRangedDescription = unsafe {
            c.as_ptr()
                .cast::<AudioStreamRangedDescription>()
                .read_unaligned()
        };
        assert_eq!(d.mFormat.mFormatID, kAudioFormatLinearPCM);
        assert_eq!(d.mFormat.mBitsPerChannel, 32);
        assert_eq!(d.mFormat.mBytesPerFrame, 4 * d.mFormat.mChannelsPerFrame);
        seen.push((d.mFormat.mSampleRate as u32, d.mFormat.mChannelsPerFrame));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (44_100, 1),
            (44_100, 2),
            (48_000, 1),
            (48_000, 2),
            (96_000, 1),
            (96_000, 2)
        ]
    );
    // The custom property is declared as a property list, so the HAL marshals it for clients.
    let raw = hal
        .get(
            MIC_DEVICE_ID,
            &addr(kAudioObjectPropertyCustomPropertyInfoList),
            12,
        )
        .unwrap();
    assert_eq!(
        u32::from_ne_bytes(raw[0..4].try_into().unwrap()),
        model::HARD_MUTE_SELECTOR
    );
    assert_eq!(
        u32::from_ne_bytes(raw[4..8].try_into().unwrap()),
        kAudioServerPlugInCustomPropertyDataTypeCFPropertyList
    );
    assert_eq!(
        hal.size(
            FEED_DEVICE_ID,
            &addr(kAudioObjectPropertyCustomPropertyInfoList)
        )
        .unwrap(),
        0
    );
    // Settable: rate, stream formats, hard mute; not names.
    assert_eq!(
        hal.settable(MIC_DEVICE_ID, &addr(kAudioDevicePropertyNominalSampleRate)),
        Ok(true)
    );
    assert_eq!(
        hal.settable(MIC_DEVICE_ID, &addr(model::HARD_MUTE_SELECTOR)),
        Ok(true)
    );
    assert_eq!(
        hal.settable(MIC_STREAM_ID, &addr(kAudioStreamPropertyVirtualFormat)),
        Ok(true)
    );
    assert_eq!(
        hal.settable(MIC_DEVICE_ID, &addr(kAudioObjectPropertyName)),
        Ok(false)
    );
    assert_eq!(
        hal.set_raw(MIC_DEVICE_ID, 0, &addr(kAudioObjectPropertyName), &[0; 8]),
        kAudioHardwareUnsupportedOperationError
    );
    // UID -> device, with the UID as qualifier.
    for (uid, want) in [
        (model::MIC_UID, MIC_DEVICE_ID),
        (model::FEED_UID, FEED_DEVICE_ID),
        ("nope", kAudioObjectUnknown),
    ] {
        let q = Cf::string(uid);
        let a = addr(kAudioPlugInPropertyTranslateUIDToDevice);
        assert_eq!(
            hal.size_q(PLUGIN_ID, &a, &(q as usize).to_ne_bytes()),
            Ok(4)
        );
        let got = hal
            .get_q(PLUGIN_ID, &a, &(q as usize).to_ne_bytes(), 4)
            .unwrap();
        assert_eq!(u32::from_ne_bytes(got.try_into().unwrap()), want);
        release(q);
    }
    assert_eq!(
        hal.get(
            PLUGIN_ID,
            &addr(kAudioPlugInPropertyTranslateUIDToDevice),
            4
        )
        .unwrap_err(),
        kAudioHardwareBadPropertySizeError
    );
}

fn sample_rate_and_format_changes_go_through_the_host(p: PlugIn) {
    let hal = Hal::load(p, Some(true));
    let rate = addr(kAudioDevicePropertyNominalSampleRate);
    assert_eq!(
        hal.get_f64(MIC_DEVICE_ID, kAudioDevicePropertyNominalSampleRate),
        48_000.0
    );
    assert_eq!(
        hal.set_raw(MIC_DEVICE_ID, 0, &rate, &[0; 4]),
        kAudioHardwareBadPropertySizeError
    );
    assert_eq!(
        hal.set_raw(MIC_DEVICE_ID, 0, &rate, &22_050f64.to_ne_bytes()),
        kAudioDeviceUnsupportedFormatError
    );
    assert_eq!(
        hal.set_raw(MIC_DEVICE_ID, 0, &rate, &96_000f64.to_ne_bytes()),
        0
    );
    // Not applied until the host says so, and asked for both devices (one rate in the ring).
    assert_eq!(
        hal.get_f64(MIC_DEVICE_ID, kAudioDevicePropertyNominalSampleRate),
        48_000.0
    );
    let done = hal.perform_pending();
    assert_eq!(
        done.iter().map(|d| d.0).collect::<Vec<_>>(),
        vec![MIC_DEVICE_ID, FEED_DEVICE_ID]
    );
    assert_eq!(
        hal.get_f64(MIC_DEVICE_ID, kAudioDevicePropertyNominalSampleRate),
        96_000.0
    );
    assert_eq!(
        hal.get_f64(FEED_DEVICE_ID, kAudioDevicePropertyNominalSampleRate),
        96_000.0
    );
    // Mono through the stream format.
    let fmt = model::float_format(96_000, 1);
    // SAFETY: viewing a plain #[repr(C)] struct as bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&fmt as *const AudioStreamBasicDescription).cast::<u8>(),
            40,
        )
    };
    let vf = addr(kAudioStreamPropertyVirtualFormat);
    assert_eq!(
        hal.set_raw(MIC_STREAM_ID, 0, &vf, &bytes[..39]),
        kAudioHardwareBadPropertySizeError
    );
    let mut int16 = fmt;
    int16.mBitsPerChannel = 16;
    // SAFETY: as above.
    let bad = unsafe {
        std::slice::from_raw_parts(
            (&int16 as *const AudioStreamBasicDescription).cast::<u8>(),
            40,
        )
    };
    assert_eq!(
        hal.set_raw(MIC_STREAM_ID, 0, &vf, bad),
        kAudioDeviceUnsupportedFormatError
    );
    assert_eq!(hal.set_raw(MIC_STREAM_ID, 0, &vf, bytes), 0);
    assert_eq!(hal.perform_pending(), vec![(MIC_DEVICE_ID, (2 << 32) | 1)]);
    let got = hal.get(MIC_STREAM_ID, &vf, 40).unwrap();
    // SAFETY: 40 bytes of ASBD written by the plug-in.
    let got: AudioStreamBasicDescription = unsafe {
        got.as_ptr()
            .cast::<AudioStreamBasicDescription>()
            .read_unaligned()
    };
    assert_eq!(got, fmt);
    // A change action the plug-in never asked for is refused.
    // SAFETY: vtable call.
    assert_eq!(
        unsafe {
            (hal.vt.PerformDeviceConfigurationChange)(hal.driver, MIC_DEVICE_ID, 77, null_mut())
        },
        kAudioHardwareIllegalOperationError
    );
}

fn io_delivers_the_feed_and_exact_zeros_while_muted_with_the_gate_at_delivery(p: PlugIn) {
    let hal = Hal::load(p, None).with_clients_running(); // fresh install: muted
    assert!(hal.hard_mute());
    assert_eq!(
        hal.will_do(MIC_DEVICE_ID, kAudioServerPlugInIOOperationReadInput),
        (true, true)
    );
    assert_eq!(
        hal.will_do(MIC_DEVICE_ID, kAudioServerPlugInIOOperationWriteMix),
        (false, true)
    );
    assert_eq!(
        hal.will_do(FEED_DEVICE_ID, kAudioServerPlugInIOOperationWriteMix),
        (true, true)
    );
    const CH: usize = 2;
    const FRAMES: usize = 512;
    let mut next = 0u32;
    let mut out = vec![7.0f32; FRAMES * CH];
    // Muted from the start: the bridge feeds, apps get exact zeros.
    for _ in 0..4 {
        let mut fed = seq_block(&mut next, FRAMES * CH, BEFORE);
        assert_eq!(hal.write_mix(&mut fed, CH), 0);
        assert_eq!(hal.read_input(&mut out, CH), 0);
        assert!(
            out.iter().all(|s| s.to_bits() == 0),
            "muted delivery must be exact zeros"
        );
    }
    // Written while muted, still in the ring at the unmute: must never come out.
    let mut fed = seq_block(&mut next, FRAMES * CH, BEFORE);
    hal.write_mix(&mut fed, CH);
    // The daemon unmutes.
    assert_eq!(hal.set_hard_mute(DAEMON_PID, false), 0);
    assert!(!hal.hard_mute());
    let mut passed_exactly = 0;
    let mut previous: Vec<f32> = Vec::new();
    for round in 0..6 {
        let mut fed = seq_block(&mut next, FRAMES * CH, AFTER);
        let this = fed.clone();
        hal.write_mix(&mut fed, CH);
        hal.read_input(&mut out, CH);
        assert!(
            out.iter().all(|o| *o >= 0.0),
            "delivered audio captured while muted"
        );
        if round == 0 {
            // The ring still held the block written while muted: all of it zeroed.
            assert!(out.iter().all(|o| o.to_bits() == 0));
        } else if out == previous {
            // One block behind (the stale block kept its place); after the samples already
            // queued at the unmute (zeroed as stale, conservatively) and the 5 ms fade-in:
            // bit-exact and in order.
            passed_exactly += 1;
        } else {
            assert!(
                round <= 2,
                "round {round}: audio not passed through exactly"
            );
        }
        previous = this;
    }
    assert_eq!(passed_exactly, 3, "audio must pass bit-exact once unmuted");
    // Audio written before the mute is never read after it.
    let mut fed = seq_block(&mut next, FRAMES * CH * 3, BEFORE);
    hal.write_mix(&mut fed, CH);
    assert_eq!(hal.set_hard_mute(APP_PID, true), 0, "anyone may add mute");
    assert!(hal.hard_mute());
    for _ in 0..3 {
        hal.read_input(&mut out, CH);
        assert!(out.iter().all(|s| s.to_bits() == 0));
    }
    // An app cannot clear it, nor can the host acting for itself.
    assert_eq!(
        hal.set_hard_mute(APP_PID, false),
        kAudioDevicePermissionsError
    );
    assert_eq!(hal.set_hard_mute(0, false), kAudioDevicePermissionsError);
    assert!(hal.hard_mute());
    let mut fed = seq_block(&mut next, FRAMES * CH, BEFORE);
    hal.write_mix(&mut fed, CH);
    hal.read_input(&mut out, CH);
    assert!(out.iter().all(|s| s.to_bits() == 0));
    // The daemon unmutes: nothing captured before that point is delivered.
    let mut fed = seq_block(&mut next, FRAMES * CH * 2, BEFORE);
    hal.write_mix(&mut fed, CH); // written while still muted, read after the unmute
    assert_eq!(hal.set_hard_mute(DAEMON_PID, false), 0);
    let mut delivered_any = false;
    for _ in 0..5 {
        let mut fed = seq_block(&mut next, FRAMES * CH, AFTER);
        hal.write_mix(&mut fed, CH);
        hal.read_input(&mut out, CH);
        assert!(
            out.iter().all(|o| *o >= 0.0),
            "a sample captured before the unmute was delivered"
        );
        delivered_any |= out.iter().any(|o| *o > 0.0);
    }
    assert!(delivered_any, "audio must flow again after the unmute");
    // The state changes were announced to the host and persisted.
    let changed = host_state(|s| s.changed.clone());
    assert!(changed.contains(&(MIC_DEVICE_ID, model::HARD_MUTE_SELECTOR)));
}

fn fail_closed_when_the_bridge_stops_and_feed_is_refused_to_other_processes(p: PlugIn) {
    let hal = Hal::load(p, Some(false)).with_clients_running();
    assert!(!hal.hard_mute(), "persisted unmuted state restored");
    const CH: usize = 2;
    let mut out = vec![7.0f32; 256 * CH];
    let mut fed = vec![0.5f32; 256 * CH];
    hal.write_mix(&mut fed, CH);
    hal.read_input(&mut out, CH);
    hal.read_input(&mut out, CH); // bridge silent now: underrun
    assert!(
        out.iter().all(|s| s.to_bits() == 0),
        "no repeated or stale audio on underrun"
    );
    // Another process may not feed the microphone.
    assert_eq!(
        hal.add_client(FEED_DEVICE_ID, 99, 555, "com.example.injector"),
        0
    );
    assert_eq!(hal.start(FEED_DEVICE_ID, 99), kAudioDevicePermissionsError);
    assert_eq!(hal.remove_client(FEED_DEVICE_ID, 99, 555), 0);
    assert_eq!(
        hal.remove_client(FEED_DEVICE_ID, 99, 555),
        kAudioHardwareIllegalOperationError
    );
    // Once the daemon's client is gone it is no longer the owner.
    hal.stop_all();
    assert_eq!(
        hal.remove_client(FEED_DEVICE_ID, DAEMON_CLIENT, DAEMON_PID),
        0
    );
    assert_eq!(hal.set_hard_mute(DAEMON_PID, true), 0);
    assert_eq!(
        hal.set_hard_mute(DAEMON_PID, false),
        kAudioDevicePermissionsError
    );
    assert_eq!(
        hal.stop(MIC_DEVICE_ID, APP_CLIENT),
        kAudioHardwareNotRunningError
    );
}

/// Fast user switching: coreaudiod and the plug-in are shared by every login session, and each
/// session's LaunchAgent starts a hardmuted. Only the recorded owner's daemon may clear hard mute
/// or feed audio; the second user's daemon (same bundle id, another uid) may add mute, is
/// refused the rest with the permissions error, and whichever order the two connect in.
fn two_users_two_daemons_only_the_recorded_owner_controls_the_mute(p: PlugIn) {
    const OTHER_CLIENT: u32 = 9;
    for other_first in [true, false] {
        let hal = Hal::load(p, Some(true));
        let other = || {
            assert_eq!(
                hal.add_client(
                    FEED_DEVICE_ID,
                    OTHER_CLIENT,
                    OTHER_DAEMON_PID,
                    model::DAEMON_BUNDLE_ID
                ),
                0
            );
            assert_eq!(
                hal.start(FEED_DEVICE_ID, OTHER_CLIENT),
                kAudioDevicePermissionsError,
                "never feeds audio"
            );
            assert_eq!(
                hal.set_hard_mute(OTHER_DAEMON_PID, false),
                kAudioDevicePermissionsError
            );
        };
        if other_first {
            other();
            assert!(hal.hard_mute());
        }
        assert_eq!(
            hal.add_client(
                FEED_DEVICE_ID,
                DAEMON_CLIENT,
                DAEMON_PID,
                model::DAEMON_BUNDLE_ID
            ),
            0
        );
        assert_eq!(
            hal.add_client(MIC_DEVICE_ID, APP_CLIENT, APP_PID, "us.zoom.xos"),
            0
        );
        if !other_first {
            other();
        }
        assert_eq!(
            hal.start(FEED_DEVICE_ID, DAEMON_CLIENT),
            0,
            "the owner's daemon feeds"
        );
        assert_eq!(
            hal.set_hard_mute(DAEMON_PID, false),
            0,
            "other_first={other_first}"
        );
        assert!(!hal.hard_mute());
        // The second user's daemon applies *its* saved state (muted): that adds mute...
        assert_eq!(hal.set_hard_mute(OTHER_DAEMON_PID, true), 0);
        assert!(hal.hard_mute());
        // ...and can never take it back off; the owner can.
        assert_eq!(
            hal.set_hard_mute(OTHER_DAEMON_PID, false),
            kAudioDevicePermissionsError
        );
        assert!(hal.hard_mute());
        assert_eq!(hal.set_hard_mute(DAEMON_PID, false), 0);
        // The owner's own conferencing app (same uid, not the daemon's bundle id) cannot clear it.
        assert_eq!(hal.set_hard_mute(APP_PID, true), 0);
        assert_eq!(
            hal.set_hard_mute(APP_PID, false),
            kAudioDevicePermissionsError
        );
        assert_eq!(
            hal.remove_client(FEED_DEVICE_ID, OTHER_CLIENT, OTHER_DAEMON_PID),
            0
        );
    }
}

/// The declared bundle id alone is nothing: a process of another uid that declares the daemon's
/// bundle id, or a pid the kernel no longer knows, is not the owner. Without a recorded owner
/// (development install) the first daemon binds its user, and the second user is still refused.
fn the_uid_decides_not_the_declared_bundle_id(p: PlugIn) {
    let hal = Hal::load(p, Some(true));
    // pid reused / unknown to the kernel: no uid, no authority, no feed.
    assert_eq!(
        hal.add_client(
            FEED_DEVICE_ID,
            DAEMON_CLIENT,
            DAEMON_PID,
            model::DAEMON_BUNDLE_ID
        ),
        0
    );
    p.remove_process(DAEMON_PID);
    assert_eq!(
        hal.set_hard_mute(DAEMON_PID, false),
        kAudioDevicePermissionsError
    );
    assert_eq!(
        hal.start(FEED_DEVICE_ID, DAEMON_CLIENT),
        kAudioDevicePermissionsError
    );
    // The pid now belongs to another user (exit + reuse): still refused.
    p.set_process(DAEMON_PID, OTHER_UID);
    assert_eq!(
        hal.set_hard_mute(DAEMON_PID, false),
        kAudioDevicePermissionsError
    );
    assert_eq!(
        hal.remove_client(FEED_DEVICE_ID, DAEMON_CLIENT, DAEMON_PID),
        0
    );

    // Owner recorded as the *other* user: the first user's daemon is the stranger now.
    hal.reload_with_owner(Some(OTHER_UID));
    assert_eq!(
        hal.add_client(
            FEED_DEVICE_ID,
            DAEMON_CLIENT,
            DAEMON_PID,
            model::DAEMON_BUNDLE_ID
        ),
        0
    );
    assert_eq!(
        hal.add_client(FEED_DEVICE_ID, 9, OTHER_DAEMON_PID, model::DAEMON_BUNDLE_ID),
        0
    );
    assert_eq!(
        hal.set_hard_mute(DAEMON_PID, false),
        kAudioDevicePermissionsError
    );
    assert_eq!(hal.set_hard_mute(OTHER_DAEMON_PID, false), 0);
    assert_eq!(hal.set_hard_mute(DAEMON_PID, true), 0);
    assert_eq!(
        hal.remove_client(FEED_DEVICE_ID, DAEMON_CLIENT, DAEMON_PID),
        0
    );
    assert_eq!(hal.remove_client(FEED_DEVICE_ID, 9, OTHER_DAEMON_PID), 0);

    // No record: the first daemon to connect binds its uid; the other user's daemon is refused.
    for (first, second) in [
        (DAEMON_PID, OTHER_DAEMON_PID),
        (OTHER_DAEMON_PID, DAEMON_PID),
    ] {
        hal.reload_with_owner(None);
        assert_eq!(
            hal.add_client(FEED_DEVICE_ID, 20, first, model::DAEMON_BUNDLE_ID),
            0
        );
        assert_eq!(
            hal.add_client(FEED_DEVICE_ID, 21, second, model::DAEMON_BUNDLE_ID),
            0
        );
        assert_eq!(
            hal.set_hard_mute(second, false),
            kAudioDevicePermissionsError
        );
        assert_eq!(hal.set_hard_mute(first, false), 0);
        assert_eq!(hal.set_hard_mute(first, true), 0);
        assert_eq!(hal.remove_client(FEED_DEVICE_ID, 20, first), 0);
        assert_eq!(hal.remove_client(FEED_DEVICE_ID, 21, second), 0);
    }
    Hal::users(p, Some(OWNER_UID));
}

fn mute_state_persists_through_the_host_storage(p: PlugIn) {
    {
        let hal = Hal::load(p, None).with_clients_running();
        assert!(hal.hard_mute(), "a fresh install starts muted");
        assert_eq!(hal.set_hard_mute(DAEMON_PID, false), 0);
        let stored = host_state(|s| {
            s.storage
                .iter()
                .find(|(k, _)| k == model::STORAGE_KEY_HARD_MUTE)
                .map(|(_, v)| *v)
        });
        assert_eq!(
            as_bool(stored.expect("persisted") as CFTypeRef),
            Some(false)
        );
    }
    let hal = Hal::load(p, Some(true));
    assert!(hal.hard_mute());
    drop(hal);
    let hal = Hal::load(p, Some(false));
    assert!(!hal.hard_mute());
}

fn io_calls_never_allocate_in_any_format(p: PlugIn) {
    let hal = Hal::load(p, Some(false)).with_clients_running();
    let mut checked = 0;
    for (mic_ch, feed_ch) in [(2usize, 2usize), (1, 2), (2, 1)] {
        for (dev, stream, ch) in [
            (MIC_DEVICE_ID, MIC_STREAM_ID, mic_ch),
            (FEED_DEVICE_ID, FEED_STREAM_ID, feed_ch),
        ] {
            let _ = dev;
            let f = model::float_format(48_000, ch as u32);
            // SAFETY: viewing a plain #[repr(C)] struct as bytes.
            let b = unsafe {
                std::slice::from_raw_parts(
                    (&f as *const AudioStreamBasicDescription).cast::<u8>(),
                    40,
                )
            };
            assert_eq!(
                hal.set_raw(stream, 0, &addr(kAudioStreamPropertyVirtualFormat), b),
                0
            );
        }
        hal.perform_pending();
        // Buffers and values prepared outside the measured region.
        let mut fed = vec![0.25f32; 512 * feed_ch];
        let mut out = vec![1.0f32; 512 * mic_ch];
        let io = p.measure(|| {
            for i in 0..200 {
                p.advance_clock(10_000);
                hal.zero_time_stamp(MIC_DEVICE_ID);
                hal.zero_time_stamp(FEED_DEVICE_ID);
                assert_eq!(hal.write_mix(&mut fed, feed_ch), 0);
                assert_eq!(hal.read_input(&mut out, mic_ch), 0);
                if i == 100 {
                    checked += 1;
                }
            }
        });
        assert_eq!(
            io.heap_ops, 0,
            "IO path allocated ({mic_ch} <- {feed_ch} channels)"
        );
        // On the shipped bytes, every libSystem/CF call is counted by the loader's shim: the IO
        // operations make none but reading the Mach clock (GetZeroTimeStamp) and plain memory
        // functions; no lock, CF call or syscall.
        assert!(
            io.forbidden.is_empty(),
            "IO path called {:?} ({mic_ch} <- {feed_ch} channels)",
            io.forbidden
        );
        if p.shipped {
            assert!(
                io.clock_reads >= 400,
                "the shim saw {} mach_absolute_time calls for 400 GetZeroTimeStamp calls",
                io.clock_reads
            );
        }
        // The conversion really ran: steady-state audio at the fed level.
        assert!(
            out.iter().skip(256).all(|s| (*s - 0.25).abs() < 1e-6),
            "{mic_ch} <- {feed_ch}: {:?}",
            &out[..4]
        );
    }
    assert_eq!(checked, 3);
    // Muted: the gate flushes the ring and writes exact zeros, with the same guarantees.
    assert_eq!(hal.set_hard_mute(APP_PID, true), 0);
    let mut fed = vec![0.25f32; 512]; // the feed is mono after the last format change
    let mut out = vec![1.0f32; 512 * 2];
    let io = p.measure(|| {
        for _ in 0..50 {
            p.advance_clock(10_000);
            hal.zero_time_stamp(MIC_DEVICE_ID);
            assert_eq!(hal.write_mix(&mut fed, 1), 0);
            assert_eq!(hal.read_input(&mut out, 2), 0);
        }
    });
    assert!(out.iter().all(|s| s.to_bits() == 0), "muted: exact zeros");
    assert_eq!(io.heap_ops, 0, "muted IO path allocated");
    assert!(
        io.forbidden.is_empty(),
        "muted IO path called {:?}",
        io.forbidden
    );
}

fn zero_time_stamps_are_whole_periods_of_the_host_clock(p: PlugIn) {
    let hal = Hal::load(p, Some(true));
    assert_eq!(
        hal.add_client(MIC_DEVICE_ID, APP_CLIENT, APP_PID, "us.zoom.xos"),
        0
    );
    for rate in [44_100u32, 48_000, 96_000] {
        hal.stop_all();
        assert_eq!(
            hal.set_raw(
                MIC_DEVICE_ID,
                0,
                &addr(kAudioDevicePropertyNominalSampleRate),
                &f64::from(rate).to_ne_bytes()
            ),
            0
        );
        hal.perform_pending();
        p.set_ticks_per_second(24_000_000);
        p.set_clock(5_000_000_000);
        let (_, _, seed_before) = hal.zero_time_stamp(MIC_DEVICE_ID);
        assert_eq!(hal.start(MIC_DEVICE_ID, APP_CLIENT), 0);
        let (s0, h0, seed) = hal.zero_time_stamp(MIC_DEVICE_ID);
        assert_ne!(seed, seed_before, "a new time line gets a new seed");
        assert_eq!((s0, h0), (0.0, 5_000_000_000));
        let period = f64::from(ZERO_TIMESTAMP_PERIOD);
        let ticks_per_frame = 24_000_000.0 / f64::from(rate);
        let (mut last_s, mut last_h) = (s0, h0);
        // Irregular call times, including long gaps: always the latest whole period, caught up
        // in one call, consistent with the sample rate.
        for step in [
            1u64,
            3_000_000,
            17_000_000,
            250_000_000,
            9,
            1_000_000_000,
            123_456_789,
        ] {
            p.advance_clock(step);
            let (s, h, sd) = hal.zero_time_stamp(MIC_DEVICE_ID);
            assert_eq!(sd, seed);
            assert!(s >= last_s && h >= last_h, "time stamps went backwards");
            assert_eq!(s % period, 0.0, "sample time not on a period boundary");
            let expect_periods = ((p.clock_now() - h0) as f64 / (period * ticks_per_frame)).floor();
            assert_eq!(
                s,
                expect_periods * period,
                "did not catch up whole periods at {rate} Hz"
            );
            // host time = anchor + sample time x ticks per frame (to the tick).
            let ideal = h0 as f64 + s * ticks_per_frame;
            assert!(
                (h as f64 - ideal).abs() <= 1.0,
                "host {h} vs {ideal} at {rate} Hz"
            );
            assert!(h <= p.clock_now());
            (last_s, last_h) = (s, h);
        }
        assert!(last_s > 0.0);
    }
}

/// The IO thread as coreaudiod runs it: feed, then read, cycle after cycle, on its own thread.
struct IoThread {
    driver: usize,
    vt: &'static AudioServerPlugInDriverInterface,
}

impl IoThread {
    fn op(&self, device: u32, stream: u32, client: u32, op: u32, buf: &mut [f32]) {
        let cycle = AudioServerPlugInIOCycleInfo::default();
        let frames = (buf.len() / 2) as u32;
        let d = self.driver as AudioServerPlugInDriverRef;
        // SAFETY: vtable calls with a buffer of `frames` stereo frames.
        unsafe {
            (self.vt.BeginIOOperation)(d, device, client, op, frames, &cycle);
            (self.vt.DoIOOperation)(
                d,
                device,
                stream,
                client,
                op,
                frames,
                &cycle,
                buf.as_mut_ptr().cast(),
                null_mut(),
            );
            (self.vt.EndIOOperation)(d, device, client, op, frames, &cycle);
        }
    }
}

fn a_mute_acknowledged_on_another_thread_holds_for_every_later_cycle(p: PlugIn) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    use std::sync::Arc;
    let hal = Hal::load(p, Some(false)).with_clients_running();
    let io = IoThread {
        driver: hal.driver as usize,
        vt: hal.vt,
    };
    // `acked` is set right after SetPropertyData(mute) returns: from then on, a cycle that starts
    // must deliver exact zeros (invariant 2: the command returns once the realtime path obeys it).
    let acked = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (violations, cycles_after_ack, audible) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let worker = {
        let (acked, stop, violations, cycles_after_ack, audible) = (
            acked.clone(),
            stop.clone(),
            violations.clone(),
            cycles_after_ack.clone(),
            audible.clone(),
        );
        std::thread::spawn(move || {
            let mut fed = vec![0.75f32; 256 * 2];
            let mut out = vec![0.0f32; 256 * 2];
            while !stop.load(SeqCst) {
                let must_be_silent = acked.load(SeqCst);
                io.op(
                    FEED_DEVICE_ID,
                    FEED_STREAM_ID,
                    DAEMON_CLIENT,
                    kAudioServerPlugInIOOperationWriteMix,
                    &mut fed,
                );
                io.op(
                    MIC_DEVICE_ID,
                    MIC_STREAM_ID,
                    APP_CLIENT,
                    kAudioServerPlugInIOOperationReadInput,
                    &mut out,
                );
                let loud = out.iter().any(|s| s.to_bits() != 0);
                if loud {
                    audible.fetch_add(1, SeqCst);
                }
                if must_be_silent {
                    cycles_after_ack.fetch_add(1, SeqCst);
                    if loud {
                        violations.fetch_add(1, SeqCst);
                    }
                }
            }
        })
    };
    for _ in 0..20 {
        // Unmuted: let audio flow for a moment.
        acked.store(false, SeqCst); // before the unmute: cycles from here on may carry audio
        assert_eq!(hal.set_hard_mute(DAEMON_PID, false), 0);
        let heard = audible.load(SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while audible.load(SeqCst) == heard {
            assert!(
                std::time::Instant::now() < deadline,
                "audio never flowed after the unmute"
            );
            std::thread::yield_now();
        }
        // Mute from an app (anyone may add mute) while the IO thread runs.
        assert_eq!(hal.set_hard_mute(APP_PID, true), 0);
        acked.store(true, SeqCst);
        let seen = cycles_after_ack.load(SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while cycles_after_ack.load(SeqCst) < seen + 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "the IO thread stalled"
            );
            std::thread::yield_now();
        }
    }
    stop.store(true, SeqCst);
    worker.join().unwrap();
    assert!(cycles_after_ack.load(SeqCst) >= 100);
    assert_eq!(
        violations.load(SeqCst),
        0,
        "audio delivered after the mute was acknowledged"
    );
}

/// On-demand capture: the mic device says "running somewhere" exactly while some app runs IO on
/// it, and tells the host on the first StartIO and the last StopIO (hardmuted opens the physical
/// mic only then). Nested starts (two apps) do not flap it.
fn running_somewhere_follows_app_io_and_is_announced(p: PlugIn) {
    let hal = Hal::load(p, Some(true));
    let gone = kAudioDevicePropertyDeviceIsRunningSomewhere;
    let running_and_told = |expect: u32| {
        assert_eq!(hal.get_u32(MIC_DEVICE_ID, gone), expect);
        assert_eq!(
            hal.get_u32(MIC_DEVICE_ID, kAudioDevicePropertyDeviceIsRunning),
            expect
        );
        let changed = host_state(|s| std::mem::take(&mut s.changed));
        assert!(
            changed.contains(&(MIC_DEVICE_ID, gone))
                && changed.contains(&(MIC_DEVICE_ID, kAudioDevicePropertyDeviceIsRunning)),
            "the host was not told: {changed:?}"
        );
    };
    assert!(hal.has(MIC_DEVICE_ID, &addr(gone)));
    assert_eq!(hal.get_u32(MIC_DEVICE_ID, gone), 0, "idle at load");
    host_state(|s| s.changed.clear());
    assert_eq!(
        hal.add_client(MIC_DEVICE_ID, APP_CLIENT, APP_PID, "us.zoom.xos"),
        0
    );
    assert_eq!(hal.start(MIC_DEVICE_ID, APP_CLIENT), 0);
    running_and_told(1);
    // A second app: still running, nothing new to announce.
    assert_eq!(hal.start(MIC_DEVICE_ID, APP_CLIENT), 0);
    assert_eq!(hal.get_u32(MIC_DEVICE_ID, gone), 1);
    assert!(host_state(|s| s
        .changed
        .iter()
        .all(|(_, sel)| *sel != gone)));
    assert_eq!(hal.stop(MIC_DEVICE_ID, APP_CLIENT), 0);
    assert_eq!(hal.get_u32(MIC_DEVICE_ID, gone), 1, "one app still records");
    assert!(host_state(|s| s
        .changed
        .iter()
        .all(|(_, sel)| *sel != gone)));
    assert_eq!(hal.stop(MIC_DEVICE_ID, APP_CLIENT), 0);
    running_and_told(0);
    // A stray StopIO is refused and announces nothing.
    assert_eq!(
        hal.stop(MIC_DEVICE_ID, APP_CLIENT),
        kAudioHardwareNotRunningError
    );
    assert!(host_state(|s| s.changed.is_empty()));
}

/// The plug-in's records reach os_log: subsystem = the bundle id, category `plugin`, the constant
/// format `%{public}s` in the image, the type from the level, and the message as the text the
/// argument buffer decodes to (by the fake's decoder, on the Linux build and on the shipped bytes
/// through the loader's shim). The Mac's own `log` tool is not involved.
fn the_unified_log_gets_initialize_and_a_refused_unmute(p: PlugIn) {
    // Counted from the turn, not before waiting for it: another scenario's records land meanwhile.
    let hal = Hal::load(p, Some(true));
    let before = hal.log_mark;
    assert_eq!(
        hal.set_hard_mute(OTHER_DAEMON_PID, false),
        kAudioDevicePermissionsError
    );
    assert!(hal.hard_mute());
    let records = oslog_records::records().split_off(before);
    for r in &records {
        assert_eq!(r.subsystem, "org.hardmute.driver", "{r:?}");
        assert_eq!(r.category, "plugin", "{r:?}");
        assert_eq!(r.format, "%{public}s", "{r:?}");
        assert_eq!(r.size, 12, "{r:?}");
        assert!(r.text.is_ok(), "undecodable record {r:?}");
    }
    let texts: Vec<(u8, &str)> = records
        .iter()
        .map(|r| (r.ty, r.text.as_deref().unwrap_or("")))
        .collect();
    let expect = [
        (
            oslog::OS_LOG_TYPE_INFO,
            format!("hardmute: the microphone belongs to uid {OWNER_UID}"),
        ),
        (
            oslog::OS_LOG_TYPE_INFO,
            "hardmute: initialized, hard mute = true".to_string(),
        ),
        (
            oslog::OS_LOG_TYPE_DEFAULT,
            format!("hardmute: pid {OTHER_DAEMON_PID} (uid {OTHER_UID}) may not clear hard mute"),
        ),
    ];
    let expect: Vec<(u8, &str)> = expect.iter().map(|(t, m)| (*t, m.as_str())).collect();
    assert_eq!(texts, expect);
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if p.shipped {
        let image = hardmute_macos_loader::shipped().expect("loaded");
        let (at, len) = image
            .section("__TEXT", "__oslogstring")
            .expect("the shipped slice has a __TEXT,__oslogstring section");
        for r in &records {
            // `__dso_handle` is the image's own Mach-O header, and the format the constant in
            // the section clang gives os_log formats.
            assert_eq!(r.dso, image.header_address(), "{r:?}");
            assert!((at..at + len).contains(&r.format_addr), "{r:?}");
        }
        assert!(
            shim::Counts::now().of(shim::S::os_log_create) >= 1,
            "the shipped bytes created their log object through the shim"
        );
    }
}

// ---- every scenario, against both plug-ins ------------------------------------------------------

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        /// This crate compiled for Linux (the CF fake, the simulated clock).
        mod linux {
            $( #[test] fn $name() { super::$name(super::PlugIn::linux()) } )*
        }
        /// The shipped x86_64 slice, loaded by `hardmute-macos-loader`.
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        mod shipped_x86_64 {
            $( #[test] fn $name() {
                if let Some(p) = super::PlugIn::shipped() {
                    super::$name(p)
                }
            } )*
        }
    };
}

scenarios!(
    factory_and_iunknown_follow_cfplugin_rules,
    every_property_of_every_object_answers_consistently,
    the_object_tree_and_key_values_are_what_coreaudiod_expects,
    sample_rate_and_format_changes_go_through_the_host,
    io_delivers_the_feed_and_exact_zeros_while_muted_with_the_gate_at_delivery,
    fail_closed_when_the_bridge_stops_and_feed_is_refused_to_other_processes,
    two_users_two_daemons_only_the_recorded_owner_controls_the_mute,
    the_uid_decides_not_the_declared_bundle_id,
    mute_state_persists_through_the_host_storage,
    io_calls_never_allocate_in_any_format,
    zero_time_stamps_are_whole_periods_of_the_host_clock,
    a_mute_acknowledged_on_another_thread_holds_for_every_later_cycle,
    running_somewhere_follows_app_io_and_is_announced,
    the_unified_log_gets_initialize_and_a_refused_unmute,
);
