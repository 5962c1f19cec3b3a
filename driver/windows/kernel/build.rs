//! Build script. With the default `mingw-ddk` feature the committed bindings are used and
//! nothing happens here. With `wdk` (Windows + WDK only) the PortCls/KS bindings are
//! generated from the installed WDK with the same allowlist and C-mode options as
//! ddk/gen-bindings.sh, and the WDK import libraries are linked.
//!
//! NOT COMPILED ON LINUX: wdk-build refuses to build off Windows; the native CI job
//! (.github/workflows) is the first place this path runs.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=ddk/allowlist.txt");
    println!("cargo:rerun-if-changed=ddk/wrapper.h");
    #[cfg(feature = "wdk")]
    wdk::generate();
}

#[cfg(feature = "wdk")]
mod wdk {
    use std::{env, fs, path::PathBuf};
    use wdk_build::BuilderExt;

    pub fn generate() {
        let config =
            wdk_build::Config::from_env_auto().expect("WDK configuration (eWDK or WDK install)");
        config.configure_binary_build().expect("WDK link settings");
        // PortCls and KS are not in wdk-sys' default link set.
        for lib in ["portcls", "ks", "ksguid"] {
            println!("cargo:rustc-link-lib={lib}");
        }
        let allow = fs::read_to_string("ddk/allowlist.txt").expect("ddk/allowlist.txt");
        let mut builder = bindgen::Builder::wdk_default(&config)
            .expect("bindgen builder")
            // The real WDK has KSRTAUDIO_HWLATENCY/HWREGISTER, so no gap-filling here.
            .header_contents(
                "hardmute_wdk.h",
                "#include <ntifs.h>\n#include <portcls.h>\n#include <ks.h>\n#include <ksmedia.h>\n",
            )
            .default_enum_style(bindgen::EnumVariation::ModuleConsts)
            .layout_tests(false);
        for line in allow.lines().filter(|l| !l.starts_with('#')) {
            match line.split_once(' ') {
                Some(("type", name)) => builder = builder.allowlist_type(name),
                Some(("fn", name)) => builder = builder.allowlist_function(name),
                _ => {}
            }
        }
        let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("wdk_bindings.rs");
        builder
            .generate()
            .expect("bindgen over the WDK headers")
            .write_to_file(out)
            .expect("write bindings");
    }
}
