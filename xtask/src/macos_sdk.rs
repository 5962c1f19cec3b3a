//! A symbol-accurate stub macOS SDK (TAPI `.tbd` text stubs), generated on Linux, so ld64.lld can
//! link Mach-O images with normal two-level namespace binds (no `-undefined dynamic_lookup`): a
//! symbol that does not exist in the stub is a link error here instead of a load failure in
//! coreaudiod.
//!
//! Sources of truth:
//! - libSystem: the real export list Zig ships (PyPI `ziglang`, `lib/libc/darwin/libSystem.tbd`),
//!   fetched by `cross-check deps`.
//! - frameworks: the objc2 framework crates in the dependency graph of what is being linked. Their
//!   bindings are generated from Apple's SDK headers; every `fn`/`static` in an `extern` block is a
//!   symbol the framework exports. The framework name comes from the crate's own
//!   `#[link(name = "X", kind = "framework")]`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Targets every stub declares (LLVM's TextAPI reader matches on these).
const TBD_TARGETS: &str = "[ x86_64-macos, arm64-macos ]";
/// Version recorded in SDKSettings.json (informational; rustc passes its own deployment target).
const SDK_VERSION: &str = "14.0";

/// One stub library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubLibrary {
    /// Path inside the SDK, e.g. `System/Library/Frameworks/CoreFoundation.framework/CoreFoundation.tbd`.
    pub path: PathBuf,
    pub install_name: String,
    /// Mach-O symbol names: a C function `f` is `_f`; a few (`dyld_stub_binder`) have no `_`.
    pub symbols: BTreeSet<String>,
}

impl StubLibrary {
    pub fn framework(name: &str, symbols: BTreeSet<String>) -> Self {
        // Foundation is the one framework still at version C.
        let version = if name == "Foundation" { "C" } else { "A" };
        StubLibrary {
            path: PathBuf::from(format!(
                "System/Library/Frameworks/{name}.framework/{name}.tbd"
            )),
            install_name: format!(
                "/System/Library/Frameworks/{name}.framework/Versions/{version}/{name}"
            ),
            symbols,
        }
    }

    /// TAPI v4 text.
    pub fn to_tbd(&self) -> String {
        let mut out = format!(
            "--- !tapi-tbd\ntbd-version: 4\ntargets: {TBD_TARGETS}\ninstall-name: '{}'\n\
             current-version: 1.0\ncompatibility-version: 1.0\n",
            self.install_name
        );
        if !self.symbols.is_empty() {
            let quoted: Vec<String> = self.symbols.iter().map(|s| format!("'{s}'")).collect();
            let lines: Vec<String> = quoted.chunks(4).map(|c| c.join(", ")).collect();
            out.push_str(&format!(
                "exports:\n  - targets: {TBD_TARGETS}\n    symbols: [ {} ]\n",
                lines.join(",\n               ")
            ));
        }
        out.push_str("...\n");
        out
    }
}

/// Zig's libSystem.tbd lists targets LLVM 22's reader may not know (`arm64e.x1-*` in some
/// releases): drop those tokens, keep everything else verbatim.
pub fn sanitize_libsystem(tbd: &str) -> String {
    let mut out = String::with_capacity(tbd.len());
    for line in tbd.lines() {
        if line.contains("arm64e.x1-") {
            let indent = line.len() - line.trim_start().len();
            let (head, rest) = line.split_at(line.find('[').unwrap_or(indent));
            let kept: Vec<&str> = rest
                .trim_start_matches('[')
                .trim_end()
                .trim_end_matches(']')
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.starts_with("arm64e.x1-"))
                .collect();
            let closes = rest.trim_end().ends_with(']');
            let opens = rest.starts_with('[');
            out.push_str(head);
            if opens {
                out.push_str("[ ");
            }
            out.push_str(&kept.join(", "));
            if closes {
                out.push_str(" ]");
            } else if !kept.is_empty() {
                out.push(',');
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Symbols declared in `extern "C"`/`extern "C-unwind"`/`extern "system"` blocks of Rust source:
/// every `fn NAME` and `static [mut] NAME`, or its `#[link_name = "..."]`. Comments are skipped;
/// `extern "C" fn f() {}` definitions are not blocks and are ignored.
pub fn extern_block_symbols(source: &str) -> BTreeSet<String> {
    let tokens = tokenize(source);
    let mut symbols = BTreeSet::new();
    let mut i = 0;
    while i + 2 < tokens.len() {
        let is_block = tokens[i] == Token::Ident("extern".into())
            && matches!(&tokens[i + 1], Token::Str(abi) if abi.starts_with('C') || abi == "system")
            && tokens[i + 2] == Token::Punct('{');
        if !is_block {
            i += 1;
            continue;
        }
        i += 3;
        let mut depth = 1usize;
        let mut link_name: Option<String> = None;
        while i < tokens.len() && depth > 0 {
            match &tokens[i] {
                Token::Punct('{') => depth += 1,
                Token::Punct('}') => depth -= 1,
                Token::Ident(kw) if depth == 1 && kw == "link_name" => {
                    if let (Some(Token::Punct('=')), Some(Token::Str(name))) =
                        (tokens.get(i + 1), tokens.get(i + 2))
                    {
                        link_name = Some(name.clone());
                    }
                }
                Token::Ident(kw) if depth == 1 && (kw == "fn" || kw == "static") => {
                    let mut j = i + 1;
                    if tokens.get(j) == Some(&Token::Ident("mut".into())) {
                        j += 1;
                    }
                    if let Some(Token::Ident(name)) = tokens.get(j) {
                        let symbol = link_name.take().unwrap_or_else(|| name.clone());
                        // `\u{1}`-prefixed names bypass mangling; none are expected here.
                        if !symbol.starts_with('\u{1}') {
                            symbols.insert(symbol);
                        }
                    }
                    i = j;
                }
                _ => {}
            }
            i += 1;
        }
    }
    symbols
}

/// `X` from `#[link(name = "X", kind = "framework")]` (or its `cfg_attr` form) in the source.
pub fn linked_frameworks(source: &str) -> BTreeSet<String> {
    let tokens = tokenize(source);
    let mut frameworks = BTreeSet::new();
    for (i, token) in tokens.iter().enumerate() {
        if *token != Token::Ident("link".into()) || tokens.get(i + 1) != Some(&Token::Punct('(')) {
            continue;
        }
        let args: Vec<&Token> = tokens[i + 2..]
            .iter()
            .take_while(|t| **t != Token::Punct(')'))
            .collect();
        let value_of = |key: &str| {
            args.windows(3).find_map(|w| match w {
                [Token::Ident(k), Token::Punct('='), Token::Str(v)] if k == key => Some(v.clone()),
                _ => None,
            })
        };
        if value_of("kind").as_deref() == Some("framework") {
            if let Some(name) = value_of("name") {
                frameworks.insert(name);
            }
        }
    }
    frameworks
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
}

/// Just enough of Rust's lexer for the two scanners above: identifiers, (raw) string literals,
/// char/lifetime quotes, punctuation; comments dropped.
fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) {
            // raw string r"..." / r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                tokens.push(Token::Ident("r".into()));
                i += 1;
                continue;
            }
            j += 1;
            let start = j;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            tokens.push(Token::Str(
                chars[start..j.min(chars.len())].iter().collect(),
            ));
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            let mut value = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    value.push(chars[j + 1]);
                    j += 2;
                } else {
                    value.push(chars[j]);
                    j += 1;
                }
            }
            tokens.push(Token::Str(value));
            i = j + 1;
        } else if c == '\'' {
            // char literal ('x', '\n', '\'') or lifetime ('a): skip either
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                // lifetime: skip its name too, or `'static` would read as the keyword
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// A framework (or libobjc) crate's contribution to the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateStubs {
    pub library: StubLibrary,
    pub crate_name: String,
}

/// Reads one crate's sources: `Some` if it links a framework (objc2 framework crates) or is the
/// `objc2` runtime crate (-> libobjc), with every extern symbol it declares.
pub fn stubs_from_crate(crate_name: &str, src_dir: &Path) -> Result<Option<CrateStubs>> {
    let mut frameworks = BTreeSet::new();
    let mut symbols = BTreeSet::new();
    for file in rust_files(src_dir)? {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        frameworks.extend(linked_frameworks(&text));
        symbols.extend(
            extern_block_symbols(&text)
                .into_iter()
                .map(|s| format!("_{s}")),
        );
    }
    if crate_name == "objc2" {
        const OBJC_PREFIXES: &[&str] = &[
            "objc_",
            "class_",
            "sel_",
            "method_",
            "ivar_",
            "protocol_",
            "property_",
            "object_",
            "imp_",
        ];
        symbols.retain(|s| OBJC_PREFIXES.iter().any(|p| s[1..].starts_with(p)));
        let library = StubLibrary {
            path: PathBuf::from("usr/lib/libobjc.tbd"),
            install_name: "/usr/lib/libobjc.A.dylib".into(),
            symbols,
        };
        return Ok(Some(CrateStubs {
            library,
            crate_name: crate_name.into(),
        }));
    }
    match frameworks.len() {
        0 => Ok(None),
        1 => {
            let name = frameworks.into_iter().next().unwrap_or_default();
            Ok(Some(CrateStubs {
                library: StubLibrary::framework(&name, symbols),
                crate_name: crate_name.into(),
            }))
        }
        _ => bail!(
            "{crate_name} links several frameworks ({frameworks:?}): cannot attribute its symbols"
        ),
    }
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What went into a generated SDK (for logs and tests).
#[derive(Debug, Default)]
pub struct SdkSummary {
    /// Library install name -> number of exported symbols.
    pub libraries: BTreeMap<String, usize>,
    pub files_written: usize,
}

/// Writes the stub SDK into `root`. `libsystem_tbd` is Zig's text stub; `extra` are the
/// framework/libobjc stubs. Files are only rewritten when their content changes.
pub fn write_sdk(root: &Path, libsystem_tbd: &str, extra: &[StubLibrary]) -> Result<SdkSummary> {
    let mut summary = SdkSummary::default();
    let mut write = |rel: &Path, content: &str| -> Result<()> {
        let path = root.join(rel);
        if fs::read_to_string(&path).ok().as_deref() != Some(content) {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
            summary.files_written += 1;
        }
        Ok(())
    };
    let libsystem = sanitize_libsystem(libsystem_tbd);
    if !libsystem.contains("'/usr/lib/libSystem.B.dylib'") {
        bail!("the libSystem stub does not declare /usr/lib/libSystem.B.dylib");
    }
    write(Path::new("usr/lib/libSystem.tbd"), &libsystem)?;
    // -lc, -lm, -lpthread, -ldl all resolve to libSystem on macOS.
    for alias in ["c", "m", "pthread", "dl"] {
        write(Path::new(&format!("usr/lib/lib{alias}.tbd")), &libsystem)?;
    }
    let iconv = StubLibrary {
        path: PathBuf::from("usr/lib/libiconv.tbd"),
        install_name: "/usr/lib/libiconv.2.dylib".into(),
        symbols: [
            "_iconv",
            "_iconv_open",
            "_iconv_close",
            "_libiconv",
            "_libiconv_open",
            "_libiconv_close",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
    };
    summary.libraries.insert(
        "/usr/lib/libSystem.B.dylib".into(),
        count_tbd_symbols(&libsystem),
    );
    for lib in std::iter::once(&iconv).chain(extra) {
        write(&lib.path, &lib.to_tbd())?;
        summary
            .libraries
            .insert(lib.install_name.clone(), lib.symbols.len());
    }
    write(
        Path::new("SDKSettings.json"),
        &format!(
            "{{\"CanonicalName\":\"macosx{SDK_VERSION}\",\"Version\":\"{SDK_VERSION}\",\
             \"DisplayName\":\"hardmute stub SDK (ziglang libSystem + objc2-derived frameworks)\"}}\n"
        ),
    )?;
    Ok(summary)
}

/// Symbol-like tokens (`_x`, `'_x'`, `dyld_stub_binder`) in a text stub, across all documents.
pub fn count_tbd_symbols(tbd: &str) -> usize {
    tbd.split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .map(|t| t.trim_matches('\''))
        .filter(|t| t.starts_with('_') || *t == "dyld_stub_binder")
        .count()
}

/// Finds the objc2 framework crates in the dependency graph of `manifest` for `target` (via
/// `cargo metadata`) and turns each into a stub library; stubs for the same library merge.
pub fn stubs_for_manifest(
    toolchain: &crate::toolchain::Toolchain,
    manifest: &Path,
    target: &str,
) -> Result<Vec<StubLibrary>> {
    let out = toolchain
        .cargo(manifest.parent().unwrap_or(Path::new(".")))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            target,
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let resolved: BTreeSet<&str> = meta["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut merged: BTreeMap<PathBuf, StubLibrary> = BTreeMap::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        let id = package["id"].as_str().unwrap_or_default();
        if !(name == "objc2" || name.starts_with("objc2-")) || !resolved.contains(id) {
            continue;
        }
        let manifest_path = Path::new(package["manifest_path"].as_str().unwrap_or_default());
        let src = manifest_path.parent().unwrap_or(Path::new(".")).join("src");
        if let Some(stubs) = stubs_from_crate(name, &src)? {
            merged
                .entry(stubs.library.path.clone())
                .and_modify(|lib| lib.symbols.extend(stubs.library.symbols.iter().cloned()))
                .or_insert(stubs.library);
        }
    }
    Ok(merged.into_values().collect())
}

/// Where `deps` puts Zig's libSystem.tbd.
pub fn libsystem_tbd_path() -> PathBuf {
    crate::toolchain::cache_root()
        .join("inputs")
        .join(format!("ziglang-{}", crate::deps::ZIGLANG_VERSION))
        .join("libSystem.tbd")
}

/// Generates (or refreshes) the stub SDK named `name` for what `manifest` links on `target`.
pub fn generate_for(
    toolchain: &crate::toolchain::Toolchain,
    name: &str,
    manifest: &Path,
    target: &str,
) -> Result<PathBuf> {
    let libsystem_path = libsystem_tbd_path();
    let libsystem = fs::read_to_string(&libsystem_path).with_context(|| {
        format!(
            "{} missing: run `cargo xtask cross-check deps`",
            libsystem_path.display()
        )
    })?;
    let stubs = stubs_for_manifest(toolchain, manifest, target)?;
    let root = crate::toolchain::cache_root().join("macos-sdk").join(name);
    let summary = write_sdk(&root, &libsystem, &stubs)?;
    eprintln!(
        "stub SDK {} ({} files updated): {:?}",
        root.display(),
        summary.files_written,
        summary.libraries
    );
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extern_blocks_yield_fns_statics_and_link_names() {
        let src = r#"
            // extern "C" { fn NotInAComment(); }
            /* extern "C" { fn NorThis(); } */
            pub extern "C-unwind" fn CFAbsoluteTimeGetCurrent() -> f64 {
                extern "C-unwind" {
                    fn CFAbsoluteTimeGetCurrent() -> f64;
                }
                unsafe { CFAbsoluteTimeGetCurrent() }
            }
            extern "C" {
                /// doc with a brace { and a quote "
                pub static kCFAllocatorDefault: Option<&'static CFAllocator>;
                pub static mut kMutable: u32;
                #[cfg(feature = "CFDate")]
                #[link_name = "CFRealName"]
                pub fn CFAlias(x: u32) -> u32;
                pub fn CFPlain(cb: extern "C" fn(u32));
            }
            unsafe extern "system" { fn SystemAbi(); }
            extern "Rust" { fn NotC(); }
        "#;
        let got = extern_block_symbols(src);
        let want: BTreeSet<String> = [
            "CFAbsoluteTimeGetCurrent",
            "kCFAllocatorDefault",
            "kMutable",
            "CFRealName",
            "CFPlain",
            "SystemAbi",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn framework_link_attributes_are_found() {
        let src = r#"
            #[cfg_attr(
                feature = "gnustep-1-7",
                link(name = "gnustep-base", kind = "dylib")
            )]
            #[cfg_attr(target_vendor = "apple", link(name = "CoreAudio", kind = "framework"))]
            extern "C" {}
            #[link(kind = "framework", name = "AudioToolbox")]
            extern "C" {}
        "#;
        let got: Vec<String> = linked_frameworks(src).into_iter().collect();
        assert_eq!(got, ["AudioToolbox", "CoreAudio"]);
    }

    #[test]
    fn tbd_text_lists_underscored_symbols_and_install_name() {
        let lib = StubLibrary::framework(
            "CoreFoundation",
            ["_CFRelease", "_CFRetain"]
                .into_iter()
                .map(String::from)
                .collect(),
        );
        let tbd = lib.to_tbd();
        assert!(tbd.starts_with("--- !tapi-tbd\ntbd-version: 4\n"));
        assert!(tbd.contains(
            "install-name: '/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation'"
        ));
        assert!(tbd.contains("symbols: [ '_CFRelease', '_CFRetain' ]"));
        assert!(tbd.ends_with("...\n"));
        assert_eq!(
            lib.path,
            Path::new("System/Library/Frameworks/CoreFoundation.framework/CoreFoundation.tbd")
        );
        assert!(StubLibrary::framework("Foundation", BTreeSet::new())
            .install_name
            .contains("/Versions/C/"));
    }

    #[test]
    fn empty_stub_has_no_exports_section() {
        let tbd = StubLibrary::framework("CoreAudio", BTreeSet::new()).to_tbd();
        assert!(!tbd.contains("exports:"));
    }

    #[test]
    fn sanitizer_drops_only_unknown_arm64e_x1_targets() {
        let input = "targets: [ x86_64-macos, arm64e.x1-macos, arm64-macos ]\n\
                     targets: [ arm64e.x1-macos, arm64e-macos,\n\
                     \x20   arm64e.x1-maccatalyst, x86_64-macos ]\n\
                     symbols: [ '_a' ]\n";
        let out = sanitize_libsystem(input);
        assert_eq!(
            out,
            "targets: [ x86_64-macos, arm64-macos ]\ntargets: [ arm64e-macos,\n    x86_64-macos ]\nsymbols: [ '_a' ]\n"
        );
        let clean = "targets: [ x86_64-macos, arm64-macos ]\n";
        assert_eq!(sanitize_libsystem(clean), clean);
    }

    #[test]
    fn sdk_writer_is_idempotent_and_rejects_a_foreign_libsystem() {
        let dir = std::env::temp_dir().join(format!("hardmute-sdk-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let libsystem = StubLibrary {
            path: "usr/lib/libSystem.tbd".into(),
            install_name: "/usr/lib/libSystem.B.dylib".into(),
            symbols: ["_write".to_string()].into(),
        }
        .to_tbd();
        let cf = StubLibrary::framework("CoreFoundation", ["_CFRelease".to_string()].into());
        let first = write_sdk(&dir, &libsystem, std::slice::from_ref(&cf)).unwrap();
        assert!(first.files_written >= 8);
        assert_eq!(first.libraries["/usr/lib/libSystem.B.dylib"], 1);
        assert_eq!(
            count_tbd_symbols("symbols: [ _a, '_b',\n  dyld_stub_binder ]\n"),
            3
        );
        assert!(dir.join("usr/lib/libm.tbd").exists());
        assert!(dir.join(&cf.path).exists());
        let second = write_sdk(&dir, &libsystem, &[cf]).unwrap();
        assert_eq!(
            second.files_written, 0,
            "unchanged content must not be rewritten"
        );
        assert!(write_sdk(
            &dir,
            "--- !tapi-tbd\ninstall-name: '/usr/lib/libfoo.dylib'\n",
            &[]
        )
        .is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
