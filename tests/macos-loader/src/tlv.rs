//! Thread-local variables of a loaded image (`__thread_vars` descriptors).
//!
//! Each descriptor is `{ thunk, key, offset }`. Code reaches a variable with
//! `mov rdi, descriptor; call [rdi]`, and the thunk returns the variable's address in `rax`. The
//! compiler treats that call as clobbering only `rax` and the flags (LLVM's Darwin `TLSCall`), so
//! the thunk below saves every other caller-saved register (GPRs and xmm0-15) around the Rust
//! resolver. A thread's block is a copy of the image's template (`__thread_data` followed by the
//! zero-filled `__thread_bss`), made on the thread's first access to that image — which is an
//! allocation, counted by the shim as such ([`crate::shim::Category::Alloc`]).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

#[repr(C)]
struct Descriptor {
    thunk: usize,
    key: usize,
    offset: usize,
}
const _: () = assert!(std::mem::size_of::<Descriptor>() == 24);

/// Templates by image key (leaked: images are never unloaded).
static TEMPLATES: Mutex<Vec<&'static [u8]>> = Mutex::new(Vec::new());

/// Calls of the thunk (every thread-local access of the loaded code).
pub static ACCESSES: AtomicU64 = AtomicU64::new(0);
/// Per-thread blocks made (first access of a thread).
pub static BLOCKS_MADE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static BLOCKS: RefCell<Vec<*mut u8>> = const { RefCell::new(Vec::new()) };
    static DESTRUCTORS: RefCell<Destructors> = const { RefCell::new(Destructors(Vec::new())) };
}

type Dtor = unsafe extern "C" fn(*mut u8);

/// `_tlv_atexit` registrations of this thread, run in reverse order when the thread exits.
struct Destructors(Vec<(Dtor, *mut u8)>);

impl Drop for Destructors {
    fn drop(&mut self) {
        while let Some((f, arg)) = self.0.pop() {
            // SAFETY: registered by the loaded image through `_tlv_atexit` for this thread's
            // object, which is still alive (blocks are never freed).
            unsafe { f(arg) };
        }
    }
}

/// Registers an image's template; returns the key its descriptors carry.
pub fn register_image(template: Vec<u8>) -> usize {
    let mut t = TEMPLATES.lock();
    t.push(Box::leak(template.into_boxed_slice()));
    t.len() - 1
}

extern "C" fn tlv_resolve(d: *const Descriptor) -> *mut u8 {
    ACCESSES.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the image's code passes one of its descriptors, which the loader filled in.
    let (key, offset) = unsafe { ((*d).key, (*d).offset) };
    let block = BLOCKS.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() <= key {
            b.resize(key + 1, std::ptr::null_mut());
        }
        if b[key].is_null() {
            let template = TEMPLATES.lock().get(key).copied().unwrap_or_else(|| {
                crate::shim::fatal("thread-local descriptor with an unknown image key")
            });
            crate::shim::note_alloc();
            BLOCKS_MADE.fetch_add(1, Ordering::Relaxed);
            b[key] = Box::leak(template.to_vec().into_boxed_slice()).as_mut_ptr();
        }
        b[key]
    });
    block.wrapping_add(offset)
}

/// `_tlv_atexit(dtor, obj)`: std registers its thread-local destructors here.
///
/// # Safety
/// `dtor(arg)` must be sound to call when this thread exits.
pub unsafe extern "C" fn tlv_atexit(dtor: Dtor, arg: *mut u8) {
    crate::shim::hit(crate::shim::S::tlv_atexit);
    DESTRUCTORS.with(|d| d.borrow_mut().0.push((dtor, arg)));
}

extern "C" {
    fn hardmute_macho_tlv_get_addr();
}

/// The thunk's address (what descriptors and `__tlv_bootstrap` binds point at).
pub fn get_addr_thunk() -> usize {
    hardmute_macho_tlv_get_addr as *const () as usize
}

std::arch::global_asm!(
    ".pushsection .text.hardmute_macho_tlv_get_addr,\"ax\",@progbits",
    ".globl hardmute_macho_tlv_get_addr",
    ".p2align 4",
    "hardmute_macho_tlv_get_addr:",
    "push rbp",
    "mov rbp, rsp",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "sub rsp, 256",
    "and rsp, -16",
    "movdqu xmmword ptr [rsp + 0], xmm0",
    "movdqu xmmword ptr [rsp + 16], xmm1",
    "movdqu xmmword ptr [rsp + 32], xmm2",
    "movdqu xmmword ptr [rsp + 48], xmm3",
    "movdqu xmmword ptr [rsp + 64], xmm4",
    "movdqu xmmword ptr [rsp + 80], xmm5",
    "movdqu xmmword ptr [rsp + 96], xmm6",
    "movdqu xmmword ptr [rsp + 112], xmm7",
    "movdqu xmmword ptr [rsp + 128], xmm8",
    "movdqu xmmword ptr [rsp + 144], xmm9",
    "movdqu xmmword ptr [rsp + 160], xmm10",
    "movdqu xmmword ptr [rsp + 176], xmm11",
    "movdqu xmmword ptr [rsp + 192], xmm12",
    "movdqu xmmword ptr [rsp + 208], xmm13",
    "movdqu xmmword ptr [rsp + 224], xmm14",
    "movdqu xmmword ptr [rsp + 240], xmm15",
    "call {resolve}",
    "movdqu xmm0, xmmword ptr [rsp + 0]",
    "movdqu xmm1, xmmword ptr [rsp + 16]",
    "movdqu xmm2, xmmword ptr [rsp + 32]",
    "movdqu xmm3, xmmword ptr [rsp + 48]",
    "movdqu xmm4, xmmword ptr [rsp + 64]",
    "movdqu xmm5, xmmword ptr [rsp + 80]",
    "movdqu xmm6, xmmword ptr [rsp + 96]",
    "movdqu xmm7, xmmword ptr [rsp + 112]",
    "movdqu xmm8, xmmword ptr [rsp + 128]",
    "movdqu xmm9, xmmword ptr [rsp + 144]",
    "movdqu xmm10, xmmword ptr [rsp + 160]",
    "movdqu xmm11, xmmword ptr [rsp + 176]",
    "movdqu xmm12, xmmword ptr [rsp + 192]",
    "movdqu xmm13, xmmword ptr [rsp + 208]",
    "movdqu xmm14, xmmword ptr [rsp + 224]",
    "movdqu xmm15, xmmword ptr [rsp + 240]",
    "lea rsp, [rbp - 64]",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rbp",
    "ret",
    ".popsection",
    resolve = sym tlv_resolve,
);
