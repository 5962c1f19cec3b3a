//! The loader against the shipped plug-in (the universal bundle `cargo xtask cross-check macos`
//! assembles): it maps, binds and exposes the factory; the shim covers every import the pinned
//! allowlist names except the ones listed here as reachable only on a panic's way out.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use hardmute_macos_loader::{shim, shipped};

fn image() -> Option<&'static hardmute_macos_loader::Image> {
    let image = shipped();
    if image.is_none() {
        eprintln!(
            "SKIPPED: HARDMUTE_MACHO_PLUGIN is unset (`cargo xtask cross-check macos macos-run` sets it)"
        );
    }
    image
}

#[test]
fn the_shipped_slice_loads_and_exports_only_the_factory() {
    let Some(image) = image() else { return };
    assert_eq!(
        image.exports().collect::<Vec<_>>(),
        ["_AudioServerPlugIn_Factory"]
    );
    assert!(image.factory().is_some());
    assert!(image.rebases > 100, "{} rebases", image.rebases);
    assert!(image.binds >= image.imports().len());
    assert!(image.tlv_descriptors > 0, "std's thread-locals are TLVs");
    // Every import bound; the traps are exactly the panic-only ones, everything else is shimmed.
    let mut trapped = image.trapped_imports();
    trapped.sort_unstable();
    let mut expected = shim::PANIC_ONLY_IMPORTS.to_vec();
    expected.sort_unstable();
    assert_eq!(trapped, expected);
    assert!(
        image.imports().len() >= 70,
        "{} imports",
        image.imports().len()
    );
    for i in image.imports() {
        assert!(
            i.library == shim::Lib::System.install_name()
                || i.library == shim::Lib::CoreFoundation.install_name(),
            "{} from {}",
            i.symbol,
            i.library
        );
        assert!(i.slots >= 1);
    }
}
