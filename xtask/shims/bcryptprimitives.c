/* bcryptprimitives.dll for the wine prefix of `cargo xtask cross-check windows-wine`.
 *
 * Rust's std (1.78+) fills its random keys (HashMap seeds) with ProcessPrng from
 * bcryptprimitives.dll. Windows 10+ has it; Debian 12's wine 8.0 has no such DLL, so every
 * Rust test binary would fail to load. This DLL provides only ProcessPrng, on top of the
 * documented BCryptGenRandom with the system-preferred RNG. Test prefix only: never shipped.
 * Built with: x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll this.c -lbcrypt */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE out, SIZE_T len)
{
    while (len > 0) {
        /* BCryptGenRandom takes a ULONG length: feed it at most 1 GiB at a time. */
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, out, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        out += chunk;
        len -= chunk;
    }
    return TRUE;
}
