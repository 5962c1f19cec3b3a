//! The plug-in's state and behaviour in safe Rust: clients, property get/set, configuration changes,
//! the clock, and the IO operations. `crate::driver` is the thin `extern "C"` layer above it.
//!
//! Threads: coreaudiod calls property and client methods from its own threads, and the IO
//! operations of each device from that device's realtime IO thread. The IO path (`read_input`,
//! `write_mix`, `zero_time_stamp`, begin/end) uses only atomics and the try-only [`RtCell`]; it
//! never allocates, locks, logs or touches CoreFoundation.

use crate::abi::*;
use crate::cf::{Cf, CoreFoundation, Owned};
use crate::clock::{self, Clock, HostClock};
use crate::consts::*;
use crate::identity::{Identity, Os};
use crate::model::*;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use hardmute_core::deliver::deliver_from_ring;
use hardmute_core::gate::{fade_frames_for, DEFAULT_FADE_MS};
use hardmute_core::ring::{RbConsumer, SampleRing};
use hardmute_core::{Authority, ChangeSource, ControlBlock, Gate};
use parking_lot::Mutex;
use ringbuf::traits::{Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::OnceLock;

/// A cell the realtime thread borrows with one compare-exchange and never waits for: if another
/// thread holds it (a reconfiguration), the IO path takes the fail-closed branch (zeros / drop).
pub struct RtCell<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is exclusive while `busy` is held (acquired with compare_exchange,
// released with a Release store), so sharing the cell between threads is sound for `T: Send`.
unsafe impl<T: Send> Sync for RtCell<T> {}

impl<T> RtCell<T> {
    pub const fn new(value: T) -> Self {
        RtCell {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` with exclusive access, or returns None at once if the cell is held.
    #[inline]
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self
            .busy
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: we hold `busy`, so no other reference to `value` exists until we release it.
        let r = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Release);
        Some(r)
    }

    /// Off the realtime path: retries (sleeping) until the IO thread lets go.
    pub fn with_waiting<R>(&self, mut f: impl FnMut(&mut T) -> R) -> R {
        loop {
            if let Some(r) = self.try_with(&mut f) {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

/// The microphone side of the ring plus the gate's fade state (owned by the mic IO thread).
pub struct MicIo {
    pub ring: Option<RbConsumer<HeapCons<f32>>>,
    pub gate: Gate,
}

/// A device's changing state, all atomics so the IO thread reads it without locks.
pub struct DeviceState {
    pub rate: AtomicU32,
    pub channels: AtomicU32,
    /// Clients that have started IO and not stopped it.
    pub running: AtomicU32,
    pub anchor_host_time: AtomicU64,
    pub ticks_per_period_bits: AtomicU64,
    pub seed: AtomicU64,
}

impl DeviceState {
    const fn new() -> Self {
        DeviceState {
            rate: AtomicU32::new(DEFAULT_RATE),
            channels: AtomicU32::new(DEFAULT_CHANNELS),
            running: AtomicU32::new(0),
            anchor_host_time: AtomicU64::new(0),
            ticks_per_period_bits: AtomicU64::new(0),
            seed: AtomicU64::new(1),
        }
    }
    pub fn rate(&self) -> u32 {
        self.rate.load(Acquire)
    }
    pub fn channels(&self) -> u32 {
        self.channels.load(Acquire)
    }
}

/// A client of one of our devices, as AddDeviceClient described it.
pub struct Client {
    pub device: AudioObjectID,
    pub client_id: u32,
    pub pid: PidT,
    pub bundle_id: Option<Owned>,
    /// The process's uid as the kernel reported it when the HAL added the client.
    pub uid: Option<u32>,
    /// The declared bundle id is the daemon's. Not an identity (a same-user process can
    /// declare it); together with the owner's uid it makes the owner's daemon.
    pub is_daemon: bool,
}

/// No owner uid (the value of `Plugin::owner_uid` when none is bound).
const NO_OWNER: u64 = u64::MAX;

/// Configuration changes the plug-in asks the host for (the u64 action of
/// RequestDeviceConfigurationChange / PerformDeviceConfigurationChange).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Rate(u32),
    Channels(u32),
}

impl Change {
    pub fn encode(self) -> u64 {
        match self {
            Change::Rate(r) => (1 << 32) | u64::from(r),
            Change::Channels(c) => (2 << 32) | u64::from(c),
        }
    }
    pub fn decode(action: u64) -> Option<Self> {
        let v = action as u32;
        match action >> 32 {
            1 if SAMPLE_RATES.contains(&v) => Some(Change::Rate(v)),
            2 if CHANNEL_COUNTS.contains(&v) => Some(Change::Channels(v)),
            _ => None,
        }
    }
}

pub struct Plugin {
    /// Hard mute lives here, in the plug-in (inside coreaudiod).
    pub control: ControlBlock,
    host: AtomicPtr<AudioServerPlugInHostInterface>,
    pub devices: [DeviceState; 2],
    clients: Mutex<Vec<Client>>,
    /// The owning user's uid ([`NO_OWNER`] if none): recorded by the installer, read at
    /// Initialize; without a record, the uid of the first daemon client (development installs).
    owner_uid: AtomicU64,
    owner_recorded: AtomicBool,
    strings: OnceLock<Strings>,
    mic_io: RtCell<MicIo>,
    feed_io: RtCell<Option<HeapProd<f32>>>,
    pub refs: AtomicU32,
}

impl Plugin {
    pub const fn new() -> Self {
        Plugin {
            // Muted until Initialize has read the persisted state: a fresh install starts muted.
            control: ControlBlock::new(true),
            host: AtomicPtr::new(core::ptr::null_mut()),
            devices: [DeviceState::new(), DeviceState::new()],
            clients: Mutex::new(Vec::new()),
            owner_uid: AtomicU64::new(NO_OWNER),
            owner_recorded: AtomicBool::new(false),
            strings: OnceLock::new(),
            mic_io: RtCell::new(MicIo {
                ring: None,
                gate: Gate::new(0),
            }),
            feed_io: RtCell::new(None),
            refs: AtomicU32::new(0),
        }
    }

    fn strings(&self) -> &Strings {
        self.strings.get_or_init(Strings::new)
    }

    fn host(&self) -> Option<&AudioServerPlugInHostInterface> {
        // SAFETY: the host guarantees the interface outlives the plug-in (AudioServerPlugIn.h,
        // Initialize); null until Initialize.
        unsafe { self.host.load(Acquire).as_ref() }
    }

    // ---- lifecycle ---------------------------------------------------------------------------

    /// Initialize: remember the host, publish objects, restore the persisted hard-mute state, make
    /// the ring. Calling it again (the simulated host does, per test) starts from a clean state.
    pub fn initialize(&self, host: AudioServerPlugInHostRef) -> OSStatus {
        self.host.store(host as *mut _, Release);
        self.strings();
        self.clients.lock().clear();
        let owner = Os::recorded_owner();
        self.owner_uid
            .store(owner.map_or(NO_OWNER, u64::from), Release);
        self.owner_recorded.store(owner.is_some(), Release);
        match owner {
            Some(uid) => log::info!("hardmute: the microphone belongs to uid {uid}"),
            None => log::warn!(
                "hardmute: no owner recorded in {}; the first hardmuted to connect binds its user",
                crate::identity::OWNER_FILE
            ),
        }
        for d in &self.devices {
            d.rate.store(DEFAULT_RATE, Release);
            d.channels.store(DEFAULT_CHANNELS, Release);
            d.running.store(0, Release);
        }
        let muted = self.stored_hard_mute().unwrap_or(true);
        // Startup is the owner's own persisted choice.
        let _ = self
            .control
            .set_muted(muted, ChangeSource::Startup, Authority::Owner);
        let (prod, cons) = HeapRb::<f32>::new(RING_CAPACITY_SAMPLES).split();
        let mut cons = Some(cons);
        self.mic_io.with_waiting(|io| {
            io.ring = cons.take().map(RbConsumer);
            io.gate = Gate::new(fade_frames_for(DEFAULT_RATE, DEFAULT_FADE_MS));
        });
        let mut prod = Some(prod);
        self.feed_io.with_waiting(|p| *p = prod.take());
        log::info!("hardmute: initialized, hard mute = {muted}");
        kAudioHardwareNoError
    }

    fn stored_hard_mute(&self) -> Option<bool> {
        let host = self.host()?;
        let copy = host.CopyFromStorage?;
        let mut data: CFTypeRef = core::ptr::null();
        // SAFETY: host function from the host's own table; key is a live CFString; `data` is a
        // valid out-pointer and comes back +1 (we release it).
        let st = unsafe { copy(host, self.strings().storage_key.get(), &mut data) };
        // SAFETY: CopyFromStorage returns null or a +1 property list, which `data` now owns.
        let data = unsafe { Owned::from_plus_one(data) };
        if st != 0 || data.is_null() {
            return None;
        }
        // SAFETY: `data` is live while owned.
        unsafe { Cf::plist_as_bool(data.get()) }
    }

    fn store_hard_mute(&self, muted: bool) {
        let Some(host) = self.host() else { return };
        let Some(write) = host.WriteToStorage else {
            return;
        };
        // SAFETY: Cf::boolean returns a +1 CFBoolean.
        let value = unsafe { Owned::from_plus_one(Cf::boolean(muted)) };
        // SAFETY: host function from its own table; key and value are live CF objects.
        let st = unsafe { write(host, self.strings().storage_key.get(), value.get()) };
        if st != 0 {
            log::warn!("hardmute: could not persist hard mute ({st})");
        }
    }

    fn properties_changed(&self, object: AudioObjectID, selector: AudioObjectPropertySelector) {
        let Some(host) = self.host() else { return };
        let Some(changed) = host.PropertiesChanged else {
            return;
        };
        let addr = AudioObjectPropertyAddress {
            mSelector: selector,
            mScope: kAudioObjectPropertyScopeGlobal,
            mElement: kAudioObjectPropertyElementMain,
        };
        // SAFETY: host function; `addr` lives for the call.
        unsafe { changed(host, object, 1, &addr) };
    }

    fn request_change(&self, device: AudioObjectID, change: Change) -> OSStatus {
        let Some(host) = self.host() else {
            return kAudioHardwareNotRunningError;
        };
        let Some(request) = host.RequestDeviceConfigurationChange else {
            return kAudioHardwareUnspecifiedError;
        };
        // SAFETY: host function; the change is fully encoded in the action (no info pointer).
        unsafe { request(host, device, change.encode(), core::ptr::null_mut()) }
    }

    // ---- clients -----------------------------------------------------------------------------

    pub fn add_client(
        &self,
        device: AudioObjectID,
        info: &AudioServerPlugInClientInfo,
    ) -> OSStatus {
        if device_index(device).is_none() {
            return kAudioHardwareBadDeviceError;
        }
        // SAFETY: the host's client info carries a live CFString (or null) for the call; we
        // retain what we keep, as AudioServerPlugIn.h asks.
        let bundle_id =
            (!info.mBundleID.is_null()).then(|| unsafe { Owned::retain(info.mBundleID) });
        let daemon_id = self.strings().daemon_bundle_id.get();
        // SAFETY: both strings are live while owned.
        let is_daemon = bundle_id
            .as_ref()
            .is_some_and(|b| unsafe { Cf::equal(b.get(), daemon_id) });
        let uid = Os::uid_of_pid(info.mProcessID);
        if is_daemon && !self.owner_recorded.load(Acquire) {
            if let Some(uid) = uid {
                // Development install: the first daemon binds its user until coreaudiod restarts.
                if self
                    .owner_uid
                    .compare_exchange(NO_OWNER, u64::from(uid), AcqRel, Acquire)
                    .is_ok()
                {
                    log::warn!("hardmute: no recorded owner; bound to uid {uid}");
                }
            }
        }
        let mut clients = self.clients.lock();
        clients.retain(|c| !(c.device == device && c.client_id == info.mClientID));
        clients.push(Client {
            device,
            client_id: info.mClientID,
            pid: info.mProcessID,
            bundle_id,
            uid,
            is_daemon,
        });
        kAudioHardwareNoError
    }

    pub fn remove_client(
        &self,
        device: AudioObjectID,
        info: &AudioServerPlugInClientInfo,
    ) -> OSStatus {
        if device_index(device).is_none() {
            return kAudioHardwareBadDeviceError;
        }
        let mut clients = self.clients.lock();
        let before = clients.len();
        clients.retain(|c| !(c.device == device && c.client_id == info.mClientID));
        if clients.len() == before {
            return kAudioHardwareIllegalOperationError;
        }
        kAudioHardwareNoError
    }

    /// The owning user's uid, if one is bound; and whether the installer recorded it.
    pub fn owner(&self) -> (Option<u32>, bool) {
        let uid = self.owner_uid.load(Acquire);
        (u32::try_from(uid).ok(), self.owner_recorded.load(Acquire))
    }

    fn is_owner_uid(&self, uid: Option<u32>) -> bool {
        uid.is_some_and(|u| u64::from(u) == self.owner_uid.load(Acquire))
    }

    /// Who may clear hard mute: a process running as the owning user (its uid from the kernel,
    /// looked up now for the pid the HAL passes) that the HAL introduced to us (AddDeviceClient)
    /// with the daemon's bundle id. The uid is the identity; the bundle id only keeps the
    /// owner's other apps (a conferencing app) from clearing it by accident or by a plain call.
    /// pid 0 is the host acting for itself and is never the owner.
    pub fn authority_of(&self, pid: PidT) -> Authority {
        let owner = pid != 0
            && self.is_owner_uid(Os::uid_of_pid(pid))
            && self
                .clients
                .lock()
                .iter()
                .any(|c| c.is_daemon && c.pid == pid && self.is_owner_uid(c.uid));
        if owner {
            Authority::Owner
        } else {
            Authority::Other
        }
    }

    /// The client may feed the microphone: the owner's daemon (uid and bundle id, as above).
    fn client_is_daemon(&self, device: AudioObjectID, client_id: u32) -> bool {
        self.clients.lock().iter().any(|c| {
            c.device == device
                && c.client_id == client_id
                && c.is_daemon
                && self.is_owner_uid(c.uid)
                && self.is_owner_uid(Os::uid_of_pid(c.pid))
        })
    }

    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    // ---- properties --------------------------------------------------------------------------

    pub fn has_property(&self, id: AudioObjectID, addr: &AudioObjectPropertyAddress) -> bool {
        object(id).is_some_and(|o| selectors(o).contains(&addr.mSelector))
    }

    pub fn is_settable(
        &self,
        id: AudioObjectID,
        addr: &AudioObjectPropertyAddress,
    ) -> Result<bool, OSStatus> {
        let obj = object(id).ok_or(kAudioHardwareBadObjectError)?;
        if !selectors(obj).contains(&addr.mSelector) {
            return Err(kAudioHardwareUnknownPropertyError);
        }
        Ok(is_settable(obj, addr.mSelector))
    }

    /// The value of a property. `qualifier` is the raw qualifier bytes (may be empty).
    pub fn get(
        &self,
        id: AudioObjectID,
        addr: &AudioObjectPropertyAddress,
        qualifier: &[u8],
    ) -> Result<Value, OSStatus> {
        let obj = object(id).ok_or(kAudioHardwareBadObjectError)?;
        let sel = addr.mSelector;
        let s = self.strings();
        let common = match sel {
            kAudioObjectPropertyBaseClass => Some(Value::U32(match obj {
                Object::Plugin | Object::Device(_) | Object::Stream(_) => kAudioObjectClassID,
            })),
            kAudioObjectPropertyClass => Some(Value::U32(match obj {
                Object::Plugin => kAudioPlugInClassID,
                Object::Device(_) => kAudioDeviceClassID,
                Object::Stream(_) => kAudioStreamClassID,
            })),
            kAudioObjectPropertyOwner => Some(Value::U32(match obj {
                Object::Plugin => kAudioObjectUnknown,
                Object::Device(_) => PLUGIN_ID,
                Object::Stream(i) => DEVICES[i].id,
            })),
            kAudioObjectPropertyCustomPropertyInfoList => Some(Value::CustomInfo(match obj {
                Object::Device(i) if DEVICES[i].id == MIC_DEVICE_ID => {
                    vec![AudioServerPlugInCustomPropertyInfo {
                        mSelector: HARD_MUTE_SELECTOR,
                        mPropertyDataType: kAudioServerPlugInCustomPropertyDataTypeCFPropertyList,
                        mQualifierDataType: 0,
                    }]
                }
                _ => Vec::new(),
            })),
            _ => None,
        };
        if let Some(v) = common {
            return Ok(v);
        }
        match obj {
            Object::Plugin => match sel {
                kAudioObjectPropertyManufacturer => Ok(Value::Cf(s.manufacturer.get())),
                kAudioObjectPropertyOwnedObjects | kAudioPlugInPropertyDeviceList => {
                    Ok(Value::Ids(DEVICES.iter().map(|d| d.id).collect()))
                }
                kAudioPlugInPropertyTranslateUIDToDevice => {
                    if qualifier.len() < core::mem::size_of::<CFTypeRef>() {
                        return Err(kAudioHardwareBadPropertySizeError);
                    }
                    // SAFETY: the qualifier is a CFStringRef (checked length above).
                    let uid = unsafe { qualifier.as_ptr().cast::<CFTypeRef>().read_unaligned() };
                    let found = DEVICES
                        .iter()
                        .zip(&s.uids)
                        // SAFETY: `uid` is the caller's CFString (the HAL marshals the qualifier);
                        // ours are live while owned.
                        .find(|(_, u)| unsafe { Cf::equal(u.get(), uid) })
                        .map_or(kAudioObjectUnknown, |(d, _)| d.id);
                    Ok(Value::U32(found))
                }
                kAudioPlugInPropertyResourceBundle => Ok(Value::Cf(s.resource_bundle.get())),
                _ => Err(kAudioHardwareUnknownPropertyError),
            },
            Object::Device(i) => self.device_property(i, addr),
            Object::Stream(i) => self.stream_property(i, sel),
        }
    }

    fn device_property(
        &self,
        i: usize,
        addr: &AudioObjectPropertyAddress,
    ) -> Result<Value, OSStatus> {
        let spec = &DEVICES[i];
        let st = &self.devices[i];
        let s = self.strings();
        let in_scope = |scope: u32| match spec.direction {
            Direction::Input => {
                scope == kAudioObjectPropertyScopeGlobal
                    || scope == kAudioObjectPropertyScopeInput
                    || scope == kAudioObjectPropertyScopeWildcard
            }
            Direction::Output => {
                scope == kAudioObjectPropertyScopeGlobal
                    || scope == kAudioObjectPropertyScopeOutput
                    || scope == kAudioObjectPropertyScopeWildcard
            }
        };
        Ok(match addr.mSelector {
            kAudioObjectPropertyName => Value::Cf(s.names[i].get()),
            kAudioObjectPropertyManufacturer => Value::Cf(s.manufacturer.get()),
            kAudioObjectPropertyOwnedObjects | kAudioDevicePropertyStreams => {
                Value::Ids(if in_scope(addr.mScope) {
                    vec![spec.stream_id]
                } else {
                    Vec::new()
                })
            }
            // No controls: in particular no standard mute control any client could toggle.
            kAudioObjectPropertyControlList => Value::Ids(Vec::new()),
            kAudioDevicePropertyDeviceUID => Value::Cf(s.uids[i].get()),
            kAudioDevicePropertyModelUID => Value::Cf(s.model_uid.get()),
            kAudioDevicePropertyTransportType => Value::U32(kAudioDeviceTransportTypeVirtual),
            kAudioDevicePropertyRelatedDevices => Value::Ids(vec![spec.id]),
            // Both devices tick on the same host clock inside the plug-in.
            kAudioDevicePropertyClockDomain => Value::U32(0x484d_5554),
            kAudioDevicePropertyDeviceIsAlive => Value::U32(1),
            // Every process's IO goes through this plug-in, so its count is the truth for both.
            kAudioDevicePropertyDeviceIsRunning | kAudioDevicePropertyDeviceIsRunningSomewhere => {
                Value::U32(u32::from(st.running.load(Acquire) > 0))
            }
            kAudioDevicePropertyDeviceCanBeDefaultDevice => Value::U32(u32::from(!spec.hidden)),
            kAudioDevicePropertyDeviceCanBeDefaultSystemDevice => Value::U32(0),
            // No hardware in the path: the wait in the ring is the HAL's IO schedule (see docs).
            kAudioDevicePropertyLatency => Value::U32(0),
            kAudioDevicePropertySafetyOffset => Value::U32(0),
            kAudioDevicePropertyNominalSampleRate => Value::F64(f64::from(st.rate())),
            kAudioDevicePropertyAvailableNominalSampleRates => Value::Ranges(
                SAMPLE_RATES
                    .iter()
                    .map(|r| AudioValueRange {
                        mMinimum: f64::from(*r),
                        mMaximum: f64::from(*r),
                    })
                    .collect(),
            ),
            kAudioDevicePropertyIsHidden => Value::U32(u32::from(spec.hidden)),
            kAudioDevicePropertyPreferredChannelsForStereo => Value::U32Pair([1, 2]),
            kAudioDevicePropertyZeroTimeStampPeriod => Value::U32(ZERO_TIMESTAMP_PERIOD),
            kAudioDevicePropertyClockIsStable => Value::U32(1),
            HARD_MUTE_SELECTOR if spec.id == MIC_DEVICE_ID => Value::Bool(self.control.is_muted()),
            _ => return Err(kAudioHardwareUnknownPropertyError),
        })
    }

    fn stream_property(
        &self,
        i: usize,
        sel: AudioObjectPropertySelector,
    ) -> Result<Value, OSStatus> {
        let spec = &DEVICES[i];
        let st = &self.devices[i];
        Ok(match sel {
            kAudioObjectPropertyOwnedObjects => Value::Ids(Vec::new()),
            kAudioStreamPropertyIsActive => Value::U32(1),
            kAudioStreamPropertyDirection => {
                Value::U32(u32::from(spec.direction == Direction::Input))
            }
            kAudioStreamPropertyTerminalType => Value::U32(match spec.direction {
                Direction::Input => kAudioStreamTerminalTypeMicrophone,
                Direction::Output => kAudioStreamTerminalTypeLine,
            }),
            kAudioStreamPropertyStartingChannel => Value::U32(1),
            kAudioStreamPropertyLatency => Value::U32(0),
            kAudioStreamPropertyVirtualFormat | kAudioStreamPropertyPhysicalFormat => {
                Value::Asbd(float_format(st.rate(), st.channels()))
            }
            kAudioStreamPropertyAvailableVirtualFormats
            | kAudioStreamPropertyAvailablePhysicalFormats => Value::Formats(available_formats()),
            _ => return Err(kAudioHardwareUnknownPropertyError),
        })
    }

    /// SetPropertyData. `data` is the caller's buffer (already bounds-checked to `data.len()`).
    pub fn set(
        &self,
        id: AudioObjectID,
        pid: PidT,
        addr: &AudioObjectPropertyAddress,
        data: &[u8],
    ) -> OSStatus {
        let Some(obj) = object(id) else {
            return kAudioHardwareBadObjectError;
        };
        if !selectors(obj).contains(&addr.mSelector) {
            return kAudioHardwareUnknownPropertyError;
        }
        if !is_settable(obj, addr.mSelector) {
            return kAudioHardwareUnsupportedOperationError;
        }
        match (obj, addr.mSelector) {
            (Object::Device(_), kAudioDevicePropertyNominalSampleRate) => {
                let Some(rate) = read::<f64>(data) else {
                    return kAudioHardwareBadPropertySizeError;
                };
                let Some(rate) = SAMPLE_RATES.iter().copied().find(|r| f64::from(*r) == rate)
                else {
                    return kAudioDeviceUnsupportedFormatError;
                };
                self.request_rate(rate)
            }
            (Object::Stream(i), _) => {
                let Some(f) = read::<AudioStreamBasicDescription>(data) else {
                    return kAudioHardwareBadPropertySizeError;
                };
                let Some((rate, ch)) = supported_format(&f) else {
                    return kAudioDeviceUnsupportedFormatError;
                };
                let mut st = self.request_rate(rate);
                if st == 0 && ch != self.devices[i].channels() {
                    st = self.request_change(DEVICES[i].id, Change::Channels(ch));
                }
                st
            }
            (Object::Device(_), HARD_MUTE_SELECTOR) => {
                let Some(value) = read::<CFTypeRef>(data) else {
                    return kAudioHardwareBadPropertySizeError;
                };
                // SAFETY: the HAL hands the custom property's value as a live CFPropertyList (or
                // null); the type is checked inside.
                let Some(muted) = (unsafe { Cf::plist_as_bool(value) }) else {
                    return kAudioHardwareIllegalOperationError;
                };
                self.set_hard_mute(muted, pid)
            }
            _ => kAudioHardwareUnsupportedOperationError,
        }
    }

    /// The rate is the same on both devices (the ring carries one rate): ask for both.
    fn request_rate(&self, rate: u32) -> OSStatus {
        for (spec, st) in DEVICES.iter().zip(&self.devices) {
            if st.rate() != rate {
                let r = self.request_change(spec.id, Change::Rate(rate));
                if r != 0 {
                    return r;
                }
            }
        }
        kAudioHardwareNoError
    }

    /// Hard mute from a client. Anyone may add mute; only the daemon's process may clear it. Returns
    /// only once the microphone's IO thread will see the new state (or has proven stuck).
    pub fn set_hard_mute(&self, muted: bool, pid: PidT) -> OSStatus {
        let who = self.authority_of(pid);
        let source = if who == Authority::Owner {
            ChangeSource::Daemon
        } else {
            ChangeSource::OtherClient
        };
        let before = self.control.is_muted();
        if self.control.set_muted(muted, source, who).is_err() {
            match Os::uid_of_pid(pid) {
                Some(uid) => log::warn!("hardmute: pid {pid} (uid {uid}) may not clear hard mute"),
                None => log::warn!("hardmute: pid {pid} (uid unknown) may not clear hard mute"),
            }
            return kAudioDevicePermissionsError;
        }
        // Bounded: ~0.5 s of 1 ms pauses; a stuck IO thread delivers nothing at all anyway.
        let effective = self.control.wait_until_effective(
            || std::thread::sleep(std::time::Duration::from_millis(1)),
            500,
        );
        if before != muted {
            self.store_hard_mute(muted);
            self.properties_changed(MIC_DEVICE_ID, HARD_MUTE_SELECTOR);
        }
        if effective {
            kAudioHardwareNoError
        } else {
            log::error!(
                "hardmute: the microphone's IO thread did not take up hard mute = {muted} within 0.5 s"
            );
            kAudioHardwareUnspecifiedError
        }
    }

    pub fn perform_change(&self, device: AudioObjectID, action: u64) -> OSStatus {
        let Some(i) = device_index(device) else {
            return kAudioHardwareBadDeviceError;
        };
        let Some(change) = Change::decode(action) else {
            return kAudioHardwareIllegalOperationError;
        };
        match change {
            Change::Rate(r) => self.devices[i].rate.store(r, Release),
            Change::Channels(c) => self.devices[i].channels.store(c, Release),
        }
        // The ring's contents were written for the old layout: drop them (both ends are quiet
        // or fail closed while the host reconfigures).
        let mic_rate = self.devices[0].rate();
        self.mic_io.with_waiting(|io| {
            if let Some(r) = io.ring.as_mut() {
                r.discard_all();
            }
            io.gate = Gate::new(fade_frames_for(mic_rate, DEFAULT_FADE_MS));
        });
        kAudioHardwareNoError
    }

    // ---- IO ----------------------------------------------------------------------------------

    pub fn start_io(&self, device: AudioObjectID, client_id: u32) -> OSStatus {
        let Some(i) = device_index(device) else {
            return kAudioHardwareBadDeviceError;
        };
        // Only the daemon feeds the microphone: any other process starting IO on the (hidden)
        // feed device is refused, so it cannot inject audio.
        if device == FEED_DEVICE_ID && !self.client_is_daemon(device, client_id) {
            return kAudioDevicePermissionsError;
        }
        let st = &self.devices[i];
        if st.running.fetch_add(1, AcqRel) == 0 {
            let tpp = clock::ticks_per_period(
                Clock::ticks_per_second(),
                f64::from(st.rate()),
                ZERO_TIMESTAMP_PERIOD,
            );
            st.ticks_per_period_bits.store(tpp.to_bits(), Release);
            st.anchor_host_time.store(Clock::now(), Release);
            st.seed.fetch_add(1, AcqRel);
            if device == MIC_DEVICE_ID {
                // Whatever the feed wrote while nobody listened is old: never deliver it.
                self.mic_io.with_waiting(|io| {
                    if let Some(r) = io.ring.as_mut() {
                        r.discard_all();
                    }
                });
            }
            self.running_changed(device);
        }
        kAudioHardwareNoError
    }

    /// The first StartIO / last StopIO: tell the host, so listeners of "running somewhere"
    /// (hardmuted opens the physical mic only while an app records HardMute) hear it.
    fn running_changed(&self, device: AudioObjectID) {
        self.properties_changed(device, kAudioDevicePropertyDeviceIsRunning);
        self.properties_changed(device, kAudioDevicePropertyDeviceIsRunningSomewhere);
    }

    pub fn stop_io(&self, device: AudioObjectID, _client_id: u32) -> OSStatus {
        let Some(i) = device_index(device) else {
            return kAudioHardwareBadDeviceError;
        };
        let r = self.devices[i]
            .running
            .fetch_update(AcqRel, Acquire, |n| n.checked_sub(1));
        match r {
            Err(_) => kAudioHardwareNotRunningError,
            Ok(was) => {
                if was == 1 {
                    self.running_changed(device);
                }
                kAudioHardwareNoError
            }
        }
    }

    /// GetZeroTimeStamp: (sample time, host time, seed). Realtime-safe.
    #[inline]
    pub fn zero_time_stamp(&self, device: AudioObjectID) -> Result<(f64, u64, u64), OSStatus> {
        let i = device_index(device).ok_or(kAudioHardwareBadDeviceError)?;
        let st = &self.devices[i];
        let tpp = f64::from_bits(st.ticks_per_period_bits.load(Acquire));
        let (sample, host) = clock::zero_time_stamp(
            st.anchor_host_time.load(Acquire),
            Clock::now(),
            tpp,
            ZERO_TIMESTAMP_PERIOD,
        );
        Ok((sample, host, st.seed.load(Acquire)))
    }

    pub fn will_do(&self, device: AudioObjectID, operation: u32) -> Result<(bool, bool), OSStatus> {
        device_index(device).ok_or(kAudioHardwareBadDeviceError)?;
        let will = (device == MIC_DEVICE_ID && operation == kAudioServerPlugInIOOperationReadInput)
            || (device == FEED_DEVICE_ID && operation == kAudioServerPlugInIOOperationWriteMix);
        Ok((will, true))
    }

    /// ReadInput: the gate at delivery. Realtime-safe: no allocation, lock, syscall or log.
    #[inline]
    pub fn read_input(&self, out: &mut [f32]) {
        let channels = self.devices[0].channels() as usize;
        let done = self.mic_io.try_with(|io| match io.ring.as_mut() {
            Some(ring) => {
                deliver_from_ring(&self.control, &mut io.gate, ring, out, channels);
                true
            }
            None => false,
        });
        if done != Some(true) {
            // Reconfiguring or not initialized: fail closed.
            out.fill(0.0);
        }
    }

    /// WriteMix on the feed device: the bridge's audio into the ring, converted to the microphone's
    /// channel count. Realtime-safe. Dropped (fail closed) while the rates differ, while nobody
    /// records from the microphone, or while reconfiguring.
    #[inline]
    pub fn write_mix(&self, input: &[f32]) {
        let (mic, feed) = (&self.devices[0], &self.devices[1]);
        if mic.running.load(Acquire) == 0 || mic.rate() != feed.rate() {
            return;
        }
        let (src_ch, dst_ch) = (feed.channels() as usize, mic.channels() as usize);
        self.control.heartbeat();
        let overrun = self.feed_io.try_with(|p| {
            let Some(p) = p.as_mut() else { return false };
            if src_ch == dst_ch {
                return p.push_slice(input) < input.len();
            }
            let mut chunk = [0.0f32; 512];
            let frames_per_chunk = chunk.len() / dst_ch.max(1);
            // (channel counts are validated to 1 or 2; max(1) keeps chunks() total anyway)
            for src in input.chunks((frames_per_chunk * src_ch).max(1)) {
                let frames = hardmute_core::convert::convert(src, src_ch, &mut chunk, dst_ch);
                let n = frames * dst_ch;
                if p.push_slice(&chunk[..n]) < n {
                    return true;
                }
            }
            false
        });
        if overrun == Some(true) {
            self.control.note_overrun();
        }
    }

    /// Samples waiting in the ring (for tests and diagnostics).
    pub fn ring_len(&self) -> Option<usize> {
        self.mic_io
            .try_with(|io| io.ring.as_ref().map_or(0, |r| r.len()))
    }
}

impl Default for Plugin {
    fn default() -> Self {
        Self::new()
    }
}

fn read<T: Copy>(data: &[u8]) -> Option<T> {
    (data.len() >= core::mem::size_of::<T>()).then(|| {
        // SAFETY: length checked; read_unaligned tolerates any alignment; T is plain data.
        unsafe { data.as_ptr().cast::<T>().read_unaligned() }
    })
}
