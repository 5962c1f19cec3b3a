/* The few pieces of the MSVC C runtime (vcruntime + msvcrt.lib) that a Rust
 * x86_64-pc-windows-msvc program needs, for `cargo xtask cross-check windows` to LINK the
 * userspace programs with lld-link on Linux, where the VC++ libraries do not exist.
 * The C library functions themselves (memcpy, strlen, ...) come from mingw-w64's UCRT import
 * library, the Win32 API from its kernel32/ntdll/... import libraries.
 *
 * Cross-check only: shipped programs are linked by MSVC on Windows CI with the real CRT.
 * Built by the xtask as msvcrt.lib (the name the `libc` crate asks the linker for):
 *   clang --target=x86_64-pc-windows-msvc -O2 -fno-builtin -c msvc-crt.c; llvm-lib /out:msvcrt.lib */

/* Like the real msvcrt.lib: name the UCRT (memcpy, strlen, fma, ... from ucrtbase through the
 * api-ms-win-crt-* API sets), so the programs link it without rustc listing it. */
#pragma comment(lib, "ucrt")

typedef unsigned int u32;
typedef unsigned long long u64;

/* MSVC code generation references _fltused from every object that uses floating point. */
int _fltused = 0x9875;

/* ---- Thread-local storage -------------------------------------------------------------
 * Rust's #[thread_local] statics live in .tls$ sections; the loader finds them through the
 * TLS directory, which lld-link points at the symbol _tls_used. .tls sorts before .tls$*,
 * .tls$ZZZ after, so the two markers bracket the template. TLS callbacks (std's thread-local
 * destructors live in .CRT$XLB) are the pointers between .CRT$XLA and .CRT$XLZ. */
u32 _tls_index = 0;

#pragma section(".tls", read, write)
#pragma section(".tls$ZZZ", read, write)
#pragma section(".CRT$XLA", long, read)
#pragma section(".CRT$XLZ", long, read)
__declspec(allocate(".tls")) char _tls_start = 0;
__declspec(allocate(".tls$ZZZ")) char _tls_end = 0;

typedef void(__stdcall *tls_callback)(void *module, u32 reason, void *reserved);
__declspec(allocate(".CRT$XLA")) const tls_callback __xl_a = 0;
__declspec(allocate(".CRT$XLZ")) const tls_callback __xl_z = 0;

struct tls_directory { /* IMAGE_TLS_DIRECTORY64 */
    u64 start_of_data, end_of_data, index_address, callbacks_address;
    u32 zero_fill_size, characteristics;
};
const struct tls_directory _tls_used = {
    (u64)&_tls_start, (u64)&_tls_end, (u64)&_tls_index, (u64)(&__xl_a + 1), 0, 0,
};

/* ---- Entry point ------------------------------------------------------------------------
 * rustc emits a C `main`; std reads the command line itself (GetCommandLineW), so nothing is
 * parsed here. */
__declspec(dllimport) void __stdcall ExitProcess(u32 code);
int main(int argc, char **argv);
void mainCRTStartup(void) { ExitProcess((u32)main(0, 0)); }

/* ---- __chkstk ----------------------------------------------------------------------------
 * Called with the frame size in rax before a prologue allocates a page or more: touch every
 * page from the current stack pointer down, so the guard page grows the stack in order.
 * Leaves rsp and every register unchanged (the caller subtracts rax itself). */
__asm__(".globl __chkstk\n"
        "__chkstk:\n"
        "    push %rcx\n"
        "    push %rax\n"
        "    lea 24(%rsp), %rcx\n"       /* the caller's rsp */
        "1:  cmp $0x1000, %rax\n"
        "    jb 2f\n"
        "    sub $0x1000, %rcx\n"
        "    test %rcx, (%rcx)\n"
        "    sub $0x1000, %rax\n"
        "    jmp 1b\n"
        "2:  sub %rax, %rcx\n"
        "    test %rcx, (%rcx)\n"
        "    pop %rax\n"
        "    pop %rcx\n"
        "    ret\n");

/* Math functions (sinf, fmodf, floor, ...): mingw-w64's libucrt.a has most of them only as
 * __imp_ pointers (its libmingwex has the code). The xtask generates a `jmp *__imp_<name>`
 * thunk for each of those from the import library's own symbol list (user.rs). */
