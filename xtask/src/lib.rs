//! `cargo xtask cross-check [deps|core|crates|selftest|macos|all]...` — the project's cross-target verification
//! rig: builds the Windows and macOS code from Linux with Debian's rustc-web (`-Zbuild-std`) and
//! LLVM 22's linkers, and asserts on the linked binaries (Mach-O and PE, parsed with `object`).
//!
//! Layout: [`cli`] (stages, summary), [`toolchain`] (Debian cargo env, caches), [`deps`] (host
//! setup), [`targets`] (one module per stage), [`macos_sdk`] (stub SDK generator), [`inspect`]
//! (binary assertions shared by the macOS and Windows stages).

pub mod cli;
pub mod deps;
pub mod inspect;
pub mod macos_sdk;
pub mod report;
pub mod targets;
pub mod toolchain;
