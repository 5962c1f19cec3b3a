//! Test-only: runs the HAL plug-in's shipped bytes on Linux.
//!
//! The universal `HardMute.driver/Contents/MacOS/HardMute` that `cargo xtask cross-check macos`
//! links with ld64.lld holds an x86_64 slice. x86_64 Mach-O code uses the System V calling
//! convention (the same argument and return registers, callee-saved set, 16-byte stack alignment
//! and red zone as Linux), so once the image is mapped and linked, Linux can call its functions
//! directly. [`image::Image::load`] does what dyld does for this one bundle (segments, rebases,
//! binds, thread-local variables, initialisers); [`shim`] is what its imports bind to: a small
//! libSystem with macOS struct layouts, errno and clock numbering and a settable Mach clock, a
//! CoreFoundation over the plug-in's own CF fake, a call counter on every function, and a trap
//! naming any import it does not implement.
//!
//! What this cannot show: coreaudiod's own call order and threads, CFPlugIn's loading of the
//! bundle, the sandbox, code signing, and the arm64 slice (see `driver/macos/README.md`).

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

pub mod image;
pub mod shim;
pub mod tlv;

use std::path::PathBuf;
use std::sync::OnceLock;

pub use image::{BoundImport, Image, LoadError};

/// `AudioServerPlugIn_Factory`'s type (CFPlugIn's factory function).
pub type Factory = unsafe extern "C" fn(
    hardmute_macos_plugin::abi::CFTypeRef,
    hardmute_macos_plugin::abi::CFTypeRef,
) -> *mut std::ffi::c_void;

/// Where the shipped plug-in is: `$HARDMUTE_MACHO_PLUGIN` (the universal or thin x86_64 file),
/// which `cargo xtask cross-check macos-run` sets to the bundle the `macos` stage just linked.
/// Unset: the shipped scenarios skip. There is deliberately no default path: a bundle left in a
/// cache from an older source would be tested against newer expectations.
pub fn shipped_plugin_path() -> Option<PathBuf> {
    std::env::var_os("HARDMUTE_MACHO_PLUGIN").map(PathBuf::from)
}

/// Whether a missing plug-in must fail instead of skip (`HARDMUTE_MACHO_REQUIRED=1`, which the
/// cross-check's `macos-run` row sets).
pub fn required() -> bool {
    std::env::var("HARDMUTE_MACHO_REQUIRED").is_ok_and(|v| v == "1")
}

/// The shipped plug-in, loaded once per process (coreaudiod loads it once too). `None` if
/// `HARDMUTE_MACHO_PLUGIN` is unset; a file that is missing or does not load panics.
pub fn shipped() -> Option<&'static Image> {
    static IMAGE: OnceLock<Option<Image>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let Some(path) = shipped_plugin_path() else {
                assert!(
                    !required(),
                    "HARDMUTE_MACHO_REQUIRED=1 but HARDMUTE_MACHO_PLUGIN is unset"
                );
                return None;
            };
            let data =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let slice =
                image::x86_64_slice(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let image = Image::load(slice).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Some(image)
        })
        .as_ref()
}

impl Image {
    /// The exported `AudioServerPlugIn_Factory`.
    pub fn factory(&self) -> Option<Factory> {
        let addr = self.export("_AudioServerPlugIn_Factory")?;
        // SAFETY: the export is the plug-in's factory, an `extern "C"` function with this
        // signature in the mapped, linked image (x86_64 SysV = Mach-O x86_64 convention).
        Some(unsafe { std::mem::transmute::<usize, Factory>(addr) })
    }
}
