//! The controller's side of the shared page (`hardmute_linux_gate::abi`): find it through the
//! locator, check it is what the gate made, map it.
//!
//! Checks before mapping: the locator is a symlink to `/proc/<pid>/fd/<fd>`; the file it opens
//! is a regular file of exactly `SHM_SIZE` bytes carrying the gate's seals (so it can never
//! shrink under our mapping: no SIGBUS in hardmuted either); the page's header is valid and
//! names the same server pid. Anything else is refused with a reason.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hardmute_linux_gate::abi::{
    parse_locator_target, GateShm, LOCATOR_DIR, LOCATOR_NAME, REQUIRED_SEALS, SHM_SIZE,
};

/// Where the gate publishes its locator for this session.
pub fn locator_path() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")?;
    Some(Path::new(&runtime).join(LOCATOR_DIR).join(LOCATOR_NAME))
}

/// A mapped page. Unmapped on drop.
pub struct MappedPage {
    ptr: *mut GateShm,
    _fd: OwnedFd,
    /// The locator's target when it was opened (`/proc/<pid>/fd/<fd>`).
    pub target: String,
    pub server_pid: u32,
}

// SAFETY: the page is made of atomics only and stays mapped while this value lives.
unsafe impl Send for MappedPage {}
// SAFETY: as above: shared access goes through atomics.
unsafe impl Sync for MappedPage {}

impl MappedPage {
    pub fn shm(&self) -> &GateShm {
        // SAFETY: mapped, SHM_SIZE >= size_of::<GateShm>(), sealed against shrinking.
        unsafe { &*self.ptr }
    }
}

impl Drop for MappedPage {
    fn drop(&mut self) {
        // SAFETY: our own mapping of SHM_SIZE bytes.
        unsafe { libc::munmap(self.ptr.cast(), SHM_SIZE) };
    }
}

/// The locator's current target, if it is a well-formed one.
pub fn read_locator(path: &Path) -> Result<String, String> {
    let target = std::fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let target = target
        .to_str()
        .ok_or_else(|| format!("{}: not a /proc/<pid>/fd/<n> link", path.display()))?
        .to_owned();
    parse_locator_target(&target)
        .ok_or_else(|| format!("{}: not a /proc/<pid>/fd/<n> link", path.display()))?;
    Ok(target)
}

/// Opens and maps the page the locator at `path` names.
pub fn open(path: &Path) -> Result<MappedPage, String> {
    let target = read_locator(path)?;
    let (pid, _) = parse_locator_target(&target).ok_or("bad locator")?;
    let c = CString::new(Path::new(&target).as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: open on a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("{target}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: fstat into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(format!("{target}: fstat failed"));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as usize != SHM_SIZE {
        return Err(format!(
            "{target}: not the gate's page (mode {:o}, {} bytes)",
            st.st_mode, st.st_size
        ));
    }
    // SAFETY: fcntl query on our fd.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 || seals & REQUIRED_SEALS != REQUIRED_SEALS {
        return Err(format!("{target}: not sealed (seals {seals:#x})"));
    }
    // SAFETY: a shared mapping of SHM_SIZE bytes of a file that is exactly that size and
    // cannot shrink.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SHM_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "{target}: mmap: {}",
            std::io::Error::last_os_error()
        ));
    }
    let page = MappedPage {
        ptr: p.cast(),
        _fd: fd,
        target: target.clone(),
        server_pid: pid,
    };
    let shm = page.shm();
    if !shm.control.header_ok() {
        return Err(format!("{target}: bad header (magic, version or size)"));
    }
    let gate_pid = shm.gate_pid.load(std::sync::atomic::Ordering::SeqCst);
    if gate_pid != pid {
        return Err(format!("{target}: made by pid {gate_pid}, not {pid}"));
    }
    Ok(page)
}
