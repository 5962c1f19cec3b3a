/* bindgen input for the HardMute kernel driver: the kernel-mode audio (PortCls/KS)
 * declarations from mingw-w64's DDK headers. Only used by gen-bindings.sh (Linux, feature
 * `mingw-ddk`); on Windows build.rs generates from the real WDK (feature `wdk`). */
#include <ntifs.h>
#include <windef.h>
/* Gaps in mingw-w64's Vista-era headers, declared as in the WDK's ksmedia.h. */
typedef CHAR TCHAR;
typedef struct {
    ULONG FifoSize;
    ULONG ChipsetDelay;
    ULONG CodecDelay;
} KSRTAUDIO_HWLATENCY, *PKSRTAUDIO_HWLATENCY;
typedef struct {
    PVOID     Register;
    ULONG     Width;
    ULONGLONG Numerator;
    ULONGLONG Denominator;
    ULONG     Accuracy;
} KSRTAUDIO_HWREGISTER, *PKSRTAUDIO_HWREGISTER;
#include <portcls.h>
#include <ks.h>
#include <ksmedia.h>
