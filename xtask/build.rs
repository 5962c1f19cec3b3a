//! Sets `cfg(xcheck_tools)` when the external linkers the inspection tests drive are installed
//! (`cargo xtask cross-check deps`), so those tests run there and show as ignored elsewhere.

use std::path::Path;

const TOOLS: &[&str] = &[
    "/usr/bin/clang",
    "/usr/lib/llvm-22/bin/ld64.lld",
    "/usr/lib/llvm-22/bin/lld-link",
    "/usr/lib/llvm-22/bin/llvm-lipo",
    "/usr/lib/llvm-22/bin/llvm-dlltool",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(xcheck_tools)");
    for tool in TOOLS {
        println!("cargo::rerun-if-changed={tool}");
    }
    if TOOLS.iter().all(|t| Path::new(t).exists()) {
        println!("cargo::rustc-cfg=xcheck_tools");
    }
}
