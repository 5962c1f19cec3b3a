//! Mach-O facts the macOS checks assert on, read with the `object` crate (exact, no text scraping):
//! file type, two-level namespace, linked libraries, exported symbols (the dyld export trie, which
//! is what `dlsym`/CFPlugIn use), and every symbol bind with the library it binds to (classic
//! `LC_DYLD_INFO` opcodes and `LC_DYLD_CHAINED_FIXUPS` imports alike).

use std::collections::BTreeSet;
use std::fmt;

use anyhow::{anyhow, bail, ensure, Context, Result};
use object::macho;
use object::read::macho::{FatArch, MachHeader, MachOFatFile32, MachOFile64};
use object::Endianness;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    Arm64,
    X86_64,
    Other(u32),
}

impl Arch {
    fn from_cputype(cputype: u32) -> Self {
        match cputype {
            t if t == macho::CPU_TYPE_ARM64.0 => Arch::Arm64,
            t if t == macho::CPU_TYPE_X86_64.0 => Arch::X86_64,
            t => Arch::Other(t),
        }
    }

    /// The architecture of a Rust target triple (`aarch64-apple-darwin` -> arm64).
    pub fn of_target(triple: &str) -> Option<Self> {
        match triple.split('-').next()? {
            "aarch64" | "arm64" => Some(Arch::Arm64),
            "x86_64" => Some(Arch::X86_64),
            _ => None,
        }
    }
}

/// Which image a symbol reference is bound to at load time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum BindTarget {
    /// Two-level namespace: a specific library (its install name).
    Library(String),
    SelfImage,
    MainExecutable,
    /// `-undefined dynamic_lookup` / `-flat_namespace`: searched in every loaded image at run
    /// time. In a plug-in this hides a missing symbol until coreaudiod loads it.
    FlatLookup,
    /// Weak definitions coalesced by name across images (C++ inline, weak defs).
    WeakLookup,
}

impl fmt::Display for BindTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindTarget::Library(name) => f.write_str(name),
            BindTarget::SelfImage => f.write_str("<self>"),
            BindTarget::MainExecutable => f.write_str("<main executable>"),
            BindTarget::FlatLookup => f.write_str("<flat namespace lookup>"),
            BindTarget::WeakLookup => f.write_str("<weak lookup>"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bind {
    /// Symbol name as in the binary (with the leading `_`).
    pub symbol: String,
    pub target: BindTarget,
}

/// How the image tells dyld what to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixupFormat {
    /// `LC_DYLD_INFO(_ONLY)` bind/lazy-bind/weak-bind opcode streams.
    DyldInfo,
    /// `LC_DYLD_CHAINED_FIXUPS` (macOS 12+ deployment targets).
    ChainedFixups,
    /// Neither (e.g. an object file or an image with nothing to bind).
    None,
}

/// The facts of one thin 64-bit Mach-O image.
#[derive(Debug, Clone)]
pub struct MachOImage {
    pub arch: Arch,
    pub filetype: u32,
    pub flags: u32,
    pub fixups: FixupFormat,
    /// Install names from LC_LOAD_DYLIB / WEAK / REEXPORT / LAZY / UPWARD, in ordinal order.
    pub libraries: Vec<String>,
    /// Names in the dyld export trie (with the leading `_`).
    pub exports: BTreeSet<String>,
    /// Deduplicated binds (regular, lazy, weak; or chained-fixup imports).
    pub binds: BTreeSet<Bind>,
    /// LC_BUILD_VERSION for macOS: (minimum OS, SDK), each as (major, minor, patch).
    pub build_version: Option<(OsVersion, OsVersion)>,
}

/// A version as LC_BUILD_VERSION encodes it (xxxx.yy.zz nibbles), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OsVersion(pub u32, pub u32, pub u32);

impl OsVersion {
    pub fn decode(v: u32) -> Self {
        OsVersion(v >> 16, (v >> 8) & 0xff, v & 0xff)
    }
}

impl fmt::Display for OsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)?;
        if self.2 != 0 {
            write!(f, ".{}", self.2)?;
        }
        Ok(())
    }
}

impl MachOImage {
    pub fn parse(data: &[u8]) -> Result<Self> {
        let file = MachOFile64::<Endianness>::parse(data)
            .context("not a 64-bit Mach-O image (a universal file needs `parse_universal`)")?;
        let header = file.macho_header();
        let endian = file.endian();
        let mut image = MachOImage {
            arch: Arch::from_cputype(header.cputype(endian).0),
            filetype: header.filetype(endian).0,
            flags: header.flags(endian).0,
            fixups: FixupFormat::None,
            libraries: Vec::new(),
            exports: BTreeSet::new(),
            binds: BTreeSet::new(),
            build_version: None,
        };
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        // Ordinals index the dylib load commands in order; resolve them after the walk.
        let mut pending: Vec<(String, macho::BindDylib)> = Vec::new();
        let mut commands = file.macho_load_commands()?;
        while let Some(command) = commands.next()? {
            if let Some((version, _tools)) = command.build_version(endian)? {
                if version.platform.get(endian) == macho::PLATFORM_MACOS {
                    image.build_version = Some((
                        OsVersion::decode(version.minos.get(endian).0),
                        OsVersion::decode(version.sdk.get(endian).0),
                    ));
                }
            } else if let Some(dylib) = command.dylib()? {
                image
                    .libraries
                    .push(text(command.string(endian, dylib.dylib.name)?));
            } else if let Some(info) = command.dyld_info()? {
                image.fixups = FixupFormat::DyldInfo;
                let mut export = info.exports_trie(endian, data)?;
                while let Some(symbol) = export.next()? {
                    image.exports.insert(text(symbol.name()));
                }
                for iter in [
                    info.binds(endian, data, 8)?,
                    info.lazy_binds(endian, data, 8)?,
                    info.weak_binds(endian, data, 8)?,
                ] {
                    for bind in iter {
                        let bind = bind?;
                        pending.push((text(bind.symbol), bind.dylib));
                    }
                }
            } else if let Some(trie) = command.dyld_exports_trie()? {
                let mut export = trie.exports_trie(endian, data)?;
                while let Some(symbol) = export.next()? {
                    image.exports.insert(text(symbol.name()));
                }
            } else if let Some(fixups) = command.dyld_chained_fixups()? {
                image.fixups = FixupFormat::ChainedFixups;
                let fixups = fixups.chained_fixups(endian, data)?;
                let mut imports = fixups.imports(endian)?;
                while let Some(import) = imports.next()? {
                    pending.push((text(import.name), import.dylib));
                }
            }
        }
        for (symbol, dylib) in pending {
            let target = image.bind_target(dylib)?;
            image.binds.insert(Bind { symbol, target });
        }
        Ok(image)
    }

    fn bind_target(&self, dylib: macho::BindDylib) -> Result<BindTarget> {
        Ok(match dylib {
            d if d == macho::BIND_SPECIAL_DYLIB_SELF => BindTarget::SelfImage,
            d if d == macho::BIND_SPECIAL_DYLIB_MAIN_EXECUTABLE => BindTarget::MainExecutable,
            d if d == macho::BIND_SPECIAL_DYLIB_FLAT_LOOKUP => BindTarget::FlatLookup,
            d if d == macho::BIND_SPECIAL_DYLIB_WEAK_LOOKUP => BindTarget::WeakLookup,
            d => {
                let ordinal = d
                    .index()
                    .ok_or_else(|| anyhow!("bad dylib ordinal {}", d.0))?;
                let name = self
                    .libraries
                    .get(ordinal as usize - 1)
                    .ok_or_else(|| anyhow!("dylib ordinal {ordinal} has no load command"))?;
                BindTarget::Library(name.clone())
            }
        })
    }

    pub fn is_bundle(&self) -> bool {
        self.filetype == macho::MH_BUNDLE.0
    }

    pub fn is_executable(&self) -> bool {
        self.filetype == macho::MH_EXECUTE.0
    }

    pub fn is_two_level(&self) -> bool {
        self.flags & macho::MH_TWOLEVEL.0 != 0
    }

    /// Symbols resolved by searching every loaded image (flat namespace).
    pub fn flat_binds(&self) -> Vec<&Bind> {
        self.binds
            .iter()
            .filter(|b| b.target == BindTarget::FlatLookup)
            .collect()
    }

    /// Binds to a given library, e.g. to forbid the client HAL API in a plug-in.
    pub fn binds_to<'a>(&'a self, library: &'a str) -> impl Iterator<Item = &'a Bind> + 'a {
        self.binds
            .iter()
            .filter(move |b| matches!(&b.target, BindTarget::Library(l) if l == library))
    }
}

/// The slices of a universal (fat) file, or the single image of a thin one.
pub fn parse_universal(data: &[u8]) -> Result<Vec<MachOImage>> {
    if data.len() >= 4
        && u32::from_be_bytes([data[0], data[1], data[2], data[3]]) == macho::FAT_MAGIC
    {
        let fat = MachOFatFile32::parse(data).context("bad universal (fat) header")?;
        fat.arches()
            .iter()
            .map(|arch| {
                let slice = arch.data(data)?;
                let image = MachOImage::parse(slice)?;
                ensure!(
                    image.arch == Arch::from_cputype(arch.cputype().0),
                    "fat arch entry says {:?}, slice is {:?}",
                    Arch::from_cputype(arch.cputype().0),
                    image.arch
                );
                Ok(image)
            })
            .collect()
    } else {
        Ok(vec![MachOImage::parse(data)?])
    }
}

/// What a HAL plug-in bundle (or any loadable bundle) must look like.
#[derive(Debug, Clone)]
pub struct BundleRules<'a> {
    pub arch: Arch,
    /// Symbols that must be in the export trie, C names without the `_` (e.g. the factory).
    pub exports: &'a [&'a str],
    /// Install names the image may link against; anything else fails.
    pub allowed_libraries: &'a [&'a str],
}

/// What a command-line program (e.g. the bridge's probe) must look like: the same linkage rules as
/// a bundle, but MH_EXECUTE and no export requirement.
#[derive(Debug, Clone)]
pub struct ExecutableRules<'a> {
    pub arch: Arch,
    /// Install names the image may link against; anything else fails.
    pub allowed_libraries: &'a [&'a str],
}

/// Every rule checked; the error lists every violation at once.
pub fn check_bundle(image: &MachOImage, rules: &BundleRules<'_>) -> Result<()> {
    let mut problems = Vec::new();
    check_file_type(image, macho::MH_BUNDLE.0, "MH_BUNDLE", &mut problems);
    for export in rules.exports {
        if !image.exports.contains(&format!("_{export}")) {
            problems.push(format!("`{export}` is not exported (export trie)"));
        }
    }
    check_linkage(image, rules.arch, rules.allowed_libraries, &mut problems);
    finish(problems)
}

/// An MH_EXECUTE image with two-level binds to allowed libraries only.
pub fn check_executable(image: &MachOImage, rules: &ExecutableRules<'_>) -> Result<()> {
    let mut problems = Vec::new();
    check_file_type(image, macho::MH_EXECUTE.0, "MH_EXECUTE", &mut problems);
    check_linkage(image, rules.arch, rules.allowed_libraries, &mut problems);
    finish(problems)
}

/// The export trie holds exactly `expected` (C names without the `_`): a plug-in that exports
/// more than its factory leaks internals into coreaudiod's global symbol space.
pub fn check_exports_exactly(image: &MachOImage, expected: &[&str]) -> Result<()> {
    let want: BTreeSet<String> = expected.iter().map(|e| format!("_{e}")).collect();
    let missing: Vec<&str> = want
        .difference(&image.exports)
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = image
        .exports
        .difference(&want)
        .map(String::as_str)
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("not exported: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "{} unexpected exports: {}",
            extra.len(),
            extra.join(", ")
        ));
    }
    finish(problems)
}

fn check_file_type(image: &MachOImage, expected: u32, name: &str, problems: &mut Vec<String>) {
    if image.filetype != expected {
        problems.push(format!(
            "file type is {:#x}, expected {name} ({expected:#x})",
            image.filetype
        ));
    }
}

/// Arch, two-level namespace, no flat binds, only allowed libraries.
fn check_linkage(image: &MachOImage, arch: Arch, allowed: &[&str], problems: &mut Vec<String>) {
    if image.arch != arch {
        problems.push(format!("arch is {:?}, expected {arch:?}", image.arch));
    }
    if !image.is_two_level() {
        problems.push("MH_TWOLEVEL not set: every symbol would bind flat".into());
    }
    let flat = image.flat_binds();
    if !flat.is_empty() {
        let names: Vec<&str> = flat.iter().map(|b| b.symbol.as_str()).collect();
        problems.push(format!(
            "{} flat-namespace binds (undefined at link time?): {}",
            names.len(),
            names.join(", ")
        ));
    }
    for lib in &image.libraries {
        if !allowed.contains(&lib.as_str()) {
            problems.push(format!("links a library that is not allowed: {lib}"));
        }
    }
}

fn finish(problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("Mach-O check failed:\n  - {}", problems.join("\n  - "))
    }
}

/// A universal file must hold exactly these architectures (once each).
pub fn check_universal_arches(slices: &[MachOImage], expected: &[Arch]) -> Result<()> {
    let mut got: Vec<Arch> = slices.iter().map(|s| s.arch).collect();
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    ensure!(got == want, "universal file has {got:?}, expected {want:?}");
    Ok(())
}

/// A one-line summary for logs: binds per target library.
pub fn summary(image: &MachOImage) -> String {
    let mut per_target: std::collections::BTreeMap<String, usize> = Default::default();
    for bind in &image.binds {
        *per_target.entry(bind.target.to_string()).or_default() += 1;
    }
    let binds: Vec<String> = per_target
        .iter()
        .map(|(t, n)| format!("{n} from {t}"))
        .collect();
    format!(
        "{:?} filetype={:#x} fixups={:?} exports={} binds: {}",
        image.arch,
        image.filetype,
        image.fixups,
        image.exports.len(),
        binds.join(", ")
    )
}

/// A library's install name as the import allowlists write it: the framework or dylib name
/// (`CoreFoundation`, `libSystem`), or the whole install name when it fits neither pattern.
pub fn library_short_name(install_name: &str) -> &str {
    let file = install_name.rsplit('/').next().unwrap_or(install_name);
    if install_name.contains(".framework/") {
        return file;
    }
    file.split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(install_name)
}

/// Every imported symbol as an allowlist line, `<symbol> <library>`, sorted and deduplicated
/// (one line per symbol whichever fixups reference it).
pub fn import_lines(image: &MachOImage) -> Vec<String> {
    let lines: BTreeSet<String> = image
        .binds
        .iter()
        .map(|b| match &b.target {
            BindTarget::Library(lib) => format!("{} {}", b.symbol, library_short_name(lib)),
            other => format!("{} {other}", b.symbol),
        })
        .collect();
    lines.into_iter().collect()
}

/// The allowlist's lines (blank lines and `#` comments dropped, whitespace normalised).
pub fn parse_allowlist(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// The image imports exactly what `allowlist` lists: a new import and a vanished one both fail,
/// each named. `source` names the allowlist in the message.
pub fn check_imports(image: &MachOImage, allowlist: &str, source: &str) -> Result<()> {
    let want = parse_allowlist(allowlist);
    let got: BTreeSet<String> = import_lines(image).into_iter().collect();
    let mut problems = Vec::new();
    let new: Vec<&str> = got.difference(&want).map(String::as_str).collect();
    if !new.is_empty() {
        problems.push(format!(
            "{} new import(s) not in {source}: {}",
            new.len(),
            new.join(", ")
        ));
    }
    let gone: Vec<&str> = want.difference(&got).map(String::as_str).collect();
    if !gone.is_empty() {
        problems.push(format!(
            "{} import(s) in {source} no longer bound: {}",
            gone.len(),
            gone.join(", ")
        ));
    }
    finish(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CF: &str =
        "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation";
    const SYS: &str = "/usr/lib/libSystem.B.dylib";

    fn image(binds: &[(&str, &str)]) -> MachOImage {
        MachOImage {
            arch: Arch::X86_64,
            filetype: macho::MH_BUNDLE.0,
            flags: macho::MH_TWOLEVEL.0,
            fixups: FixupFormat::DyldInfo,
            libraries: vec![SYS.into(), CF.into()],
            exports: BTreeSet::new(),
            binds: binds
                .iter()
                .map(|(s, l)| Bind {
                    symbol: (*s).into(),
                    target: BindTarget::Library((*l).into()),
                })
                .collect(),
            build_version: Some((OsVersion(11, 0, 0), OsVersion(11, 0, 0))),
        }
    }

    #[test]
    fn library_short_names() {
        assert_eq!(library_short_name(CF), "CoreFoundation");
        assert_eq!(library_short_name(SYS), "libSystem");
        assert_eq!(library_short_name("/usr/lib/libobjc.A.dylib"), "libobjc");
    }

    #[test]
    fn the_import_allowlist_names_new_and_vanished_imports() {
        let img = image(&[("_malloc", SYS), ("_CFRetain", CF)]);
        assert_eq!(
            import_lines(&img),
            ["_CFRetain CoreFoundation", "_malloc libSystem"]
        );
        let list = "# comment\n_malloc   libSystem\n\n_CFRetain CoreFoundation # why\n";
        check_imports(&img, list, "x86_64.txt").unwrap();

        let grown = image(&[("_malloc", SYS), ("_CFRetain", CF), ("_proc_pidinfo", SYS)]);
        let err = check_imports(&grown, list, "x86_64.txt")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 new import(s) not in x86_64.txt: _proc_pidinfo libSystem"),
            "{err}"
        );

        let shrunk = image(&[("_malloc", SYS)]);
        let err = check_imports(&shrunk, list, "x86_64.txt")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no longer bound: _CFRetain CoreFoundation"),
            "{err}"
        );
        // The same symbol from another library is a different import.
        let moved = image(&[("_malloc", SYS), ("_CFRetain", SYS)]);
        let err = check_imports(&moved, list, "x86_64.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("_CFRetain libSystem") && err.contains("_CFRetain CoreFoundation"));
    }

    #[test]
    fn os_versions_decode_from_nibbles() {
        assert_eq!(OsVersion::decode(0x000B_0000), OsVersion(11, 0, 0));
        assert_eq!(OsVersion::decode(0x000A_0C00), OsVersion(10, 12, 0));
        assert_eq!(OsVersion(13, 4, 1).to_string(), "13.4.1");
        assert_eq!(OsVersion(11, 0, 0).to_string(), "11.0");
    }
}
