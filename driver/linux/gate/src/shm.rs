//! The process-wide shared page: created at the first `instantiate` (PipeWire's main thread,
//! never the realtime one), kept for the life of the server process, re-published at every
//! `instantiate` (so a locator deleted meanwhile comes back at the next stream start).
//!
//! Nothing here can panic: raw libc calls with checked results and fixed-size stack buffers
//! for paths (no allocation: an allocation failure in Rust aborts, and this runs inside the
//! audio server). Failures leave the gate without a page, which means zeros.

use core::ffi::c_char;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use crate::abi::{GateShm, LOCATOR_DIR, LOCATOR_NAME, MEMFD_NAME, REQUIRED_SEALS, SHM_SIZE};

static PAGE: AtomicPtr<GateShm> = AtomicPtr::new(ptr::null_mut());
static PAGE_FD: AtomicI32 = AtomicI32::new(-1);

/// The page, created on first use; null if it cannot be made. Also (re)publishes the locator.
pub fn shared() -> *const GateShm {
    let mut page = PAGE.load(Ordering::Acquire);
    if page.is_null() {
        if let Some((fd, p)) = create() {
            match PAGE.compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    PAGE_FD.store(fd, Ordering::Release);
                    page = p;
                }
                Err(winner) => {
                    // SAFETY: our own mapping and fd, never shared.
                    unsafe {
                        libc::munmap(p.cast(), SHM_SIZE);
                        libc::close(fd);
                    }
                    page = winner;
                }
            }
        }
    }
    let fd = PAGE_FD.load(Ordering::Acquire);
    if !page.is_null() && fd >= 0 {
        publish(fd);
    }
    page
}

fn create() -> Option<(i32, *mut GateShm)> {
    let mut name = [0u8; 32];
    let n = MEMFD_NAME.len().min(name.len() - 1);
    name[..n].copy_from_slice(&MEMFD_NAME.as_bytes()[..n]);
    // SAFETY: `name` is NUL-terminated; flags are valid memfd flags.
    let fd = unsafe {
        libc::memfd_create(
            name.as_ptr().cast(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return None;
    }
    let fail = |fd: i32| {
        // SAFETY: closing our own fd.
        unsafe { libc::close(fd) };
        None
    };
    // SAFETY: sizing our own memfd.
    if unsafe { libc::ftruncate(fd, SHM_SIZE as libc::off_t) } != 0 {
        return fail(fd);
    }
    // SAFETY: a fresh shared mapping of SHM_SIZE bytes of our memfd.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            SHM_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return fail(fd);
    }
    let page = p.cast::<GateShm>();
    // SAFETY: the mapping is page-aligned, SHM_SIZE >= size_of::<GateShm>(), and nobody else
    // can see it yet (the locator is published after).
    unsafe { page.write(GateShm::new(libc::getpid() as u32)) };
    // Seal: from now on nobody (us included) can shrink or grow it, or change the seals.
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, REQUIRED_SEALS) } != 0 {
        // SAFETY: undoing our own mapping.
        unsafe { libc::munmap(p, SHM_SIZE) };
        return fail(fd);
    }
    Some((fd, page))
}

/// A NUL-terminated path built in place; every push is bounds-checked.
struct PathBuf {
    buf: [u8; 512],
    len: usize,
}

impl PathBuf {
    fn new() -> Self {
        PathBuf {
            buf: [0; 512],
            len: 0,
        }
    }
    fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len.saturating_add(bytes.len());
        // Keep one byte for the NUL.
        if end >= self.buf.len() || bytes.contains(&0) {
            return false;
        }
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
                if let Some(b) = self.buf.get_mut(end) {
                    *b = 0;
                }
                true
            }
            None => false,
        }
    }
    fn push_u32(&mut self, mut v: u32) -> bool {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 || i == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }
    fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

/// `$XDG_RUNTIME_DIR/hardmute/gate` -> `/proc/<pid>/fd/<fd>`, replaced atomically.
fn publish(fd: i32) -> bool {
    // SAFETY: getenv returns null or a NUL-terminated string owned by the environment; it is
    // copied at once.
    let runtime = unsafe { libc::getenv(c"XDG_RUNTIME_DIR".as_ptr()) };
    if runtime.is_null() {
        return false;
    }
    // SAFETY: non-null, NUL-terminated (see above).
    let runtime = unsafe { core::ffi::CStr::from_ptr(runtime) }.to_bytes();
    if runtime.is_empty() {
        return false;
    }
    let mut dir = PathBuf::new();
    if !(dir.push(runtime) && dir.push(b"/") && dir.push(LOCATOR_DIR.as_bytes())) {
        return false;
    }
    // SAFETY: path calls on NUL-terminated buffers; `st` is written by lstat.
    unsafe {
        libc::mkdir(dir.as_ptr(), 0o700);
        let mut st: libc::stat = core::mem::zeroed();
        if libc::lstat(dir.as_ptr(), &mut st) != 0
            || st.st_mode & libc::S_IFMT != libc::S_IFDIR
            || st.st_uid != libc::geteuid()
        {
            return false;
        }
        if st.st_mode & 0o077 != 0 && libc::chmod(dir.as_ptr(), 0o700) != 0 {
            return false;
        }
    }
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() } as u32;
    let mut target = PathBuf::new();
    let mut tmp = PathBuf::new();
    let mut link = PathBuf::new();
    let dir_bytes = &dir.buf[..dir.len];
    let ok = target.push(b"/proc/")
        && target.push_u32(pid)
        && target.push(b"/fd/")
        && target.push_u32(fd as u32)
        && tmp.push(dir_bytes)
        && tmp.push(b"/.")
        && tmp.push(LOCATOR_NAME.as_bytes())
        && tmp.push(b"-")
        && tmp.push_u32(pid)
        && link.push(dir_bytes)
        && link.push(b"/")
        && link.push(LOCATOR_NAME.as_bytes());
    if !ok {
        return false;
    }
    // SAFETY: path calls on NUL-terminated buffers.
    unsafe {
        libc::unlink(tmp.as_ptr());
        libc::symlink(target.as_ptr(), tmp.as_ptr()) == 0
            && libc::rename(tmp.as_ptr(), link.as_ptr()) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_buffer_refuses_overflow_and_nul() {
        let mut p = PathBuf::new();
        assert!(p.push(b"/proc/") && p.push_u32(0) && p.push(b"/fd/") && p.push_u32(u32::MAX));
        assert_eq!(&p.buf[..p.len], b"/proc/0/fd/4294967295");
        assert_eq!(p.buf[p.len], 0);
        assert!(!p.push(b"a\0b"));
        assert!(!p.push(&[b'x'; 600]));
        assert_eq!(
            &p.buf[..p.len],
            b"/proc/0/fd/4294967295",
            "unchanged after a refusal"
        );
    }
}
