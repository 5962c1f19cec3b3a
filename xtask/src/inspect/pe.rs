//! PE32+ facts the Windows checks assert on, read with the `object` crate: machine, subsystem,
//! DLL flag, DLL characteristics (WDM_DRIVER), checksum, entry point, exports (name -> RVA),
//! imports (DLL -> functions), and every function's stack allocation from the x64 unwind data
//! (`.pdata`/`.xdata`), which is how the kernel rule "no frame of 4 KiB or more" is checked.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, ensure, Context, Result};
use object::pe;
use object::read::pe::{ExportTarget, ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};
use object::LittleEndian as LE;

#[derive(Debug, Clone)]
pub struct PeImage {
    pub machine: u16,
    pub subsystem: u16,
    /// COFF characteristics (IMAGE_FILE_DLL, ...).
    pub characteristics: u16,
    /// Optional-header DllCharacteristics (IMAGE_DLLCHARACTERISTICS_WDM_DRIVER, ...).
    pub dll_characteristics: u16,
    pub entry_rva: u32,
    pub checksum: u32,
    /// The checksum the loader computes over the file (None if the headers are too short).
    pub computed_checksum: Option<u32>,
    /// Exported names and their RVAs (forwarders are left out).
    pub exports: BTreeMap<String, u32>,
    /// Imported DLL (lower case) -> imported names (`#n` for ordinals).
    pub imports: BTreeMap<String, BTreeSet<String>>,
    /// One entry per function with unwind data (every function that moves `rsp`).
    pub frames: Vec<Frame>,
}

/// A function's stack use, from its x64 unwind codes (chained unwind info included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// RVA of the function (or of the chained part) the unwind data describes.
    pub begin_rva: u32,
    /// The largest single `sub rsp` of the prologue (UWOP_ALLOC_SMALL/LARGE): what a stack
    /// probe (`__chkstk`) is emitted for once it reaches a page.
    pub largest_alloc: u32,
    /// Everything the prologue puts on the stack: pushes, allocations, machine frames.
    pub total: u32,
}

/// IMAGE_SUBSYSTEM_WINDOWS_CUI: a console program.
pub const SUBSYSTEM_CONSOLE: u16 = pe::IMAGE_SUBSYSTEM_WINDOWS_CUI.0;
/// IMAGE_SUBSYSTEM_WINDOWS_GUI: a windowed program.
pub const SUBSYSTEM_GUI: u16 = pe::IMAGE_SUBSYSTEM_WINDOWS_GUI.0;

/// The kernel's page size: a frame allocation this large needs `__chkstk`.
pub const PAGE: u32 = 4096;

impl PeImage {
    /// Parses a PE32+ image; a PE32 (32-bit) image is an error, as nothing in this project is.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let file = PeFile64::parse(data).context("not a PE32+ image")?;
        let nt = file.nt_headers();
        let opt = nt.optional_header();
        let mut image = PeImage {
            machine: nt.file_header().machine.get(LE).0,
            subsystem: opt.subsystem().0,
            characteristics: nt.file_header().characteristics.get(LE).0,
            dll_characteristics: opt.dll_characteristics().0,
            entry_rva: opt.address_of_entry_point(),
            checksum: opt.check_sum(),
            computed_checksum: checksum_field_offset(data).map(|at| pe_checksum(data, at)),
            exports: BTreeMap::new(),
            imports: BTreeMap::new(),
            frames: Vec::new(),
        };
        image.frames = frames(&file)?;
        if let Some(table) = file.export_table()? {
            for export in table.exports()? {
                if let (Some(name), ExportTarget::Address(rva)) = (export.name, export.target) {
                    image
                        .exports
                        .insert(String::from_utf8_lossy(name).into_owned(), rva);
                }
            }
        }
        if let Some(table) = file.import_table()? {
            let mut descriptors = table.descriptors()?;
            while let Some(desc) = descriptors.next()? {
                let dll = String::from_utf8_lossy(table.name(desc.name.get(LE))?).to_lowercase();
                let names = image.imports.entry(dll).or_default();
                let first = match desc.original_first_thunk.get(LE) {
                    0 => desc.first_thunk.get(LE),
                    rva => rva,
                };
                let mut thunks = table.thunks(first)?;
                while let Some(thunk) = thunks.next::<pe::ImageNtHeaders64>()? {
                    names.insert(match table.import::<pe::ImageNtHeaders64>(thunk)? {
                        Import::Name(_, name) => String::from_utf8_lossy(name).into_owned(),
                        Import::Ordinal(n) => format!("#{n}"),
                    });
                }
            }
        }
        Ok(image)
    }

    pub fn is_amd64(&self) -> bool {
        self.machine == pe::IMAGE_FILE_MACHINE_AMD64.0
    }

    pub fn is_dll(&self) -> bool {
        self.characteristics & pe::IMAGE_FILE_DLL.0 != 0
    }

    pub fn is_native(&self) -> bool {
        self.subsystem == pe::IMAGE_SUBSYSTEM_NATIVE.0
    }

    /// The exported name whose address is the entry point, if any.
    pub fn entry_export(&self) -> Option<&str> {
        self.exports
            .iter()
            .find(|(_, rva)| **rva == self.entry_rva)
            .map(|(name, _)| name.as_str())
    }

    pub fn imported_dlls(&self) -> impl Iterator<Item = &str> {
        self.imports.keys().map(String::as_str)
    }

    /// `/DRIVER:WDM`: IMAGE_DLLCHARACTERISTICS_WDM_DRIVER.
    pub fn is_wdm_driver(&self) -> bool {
        self.dll_characteristics & pe::IMAGE_DLLCHARACTERISTICS_WDM_DRIVER.0 != 0
    }

    pub fn is_console(&self) -> bool {
        self.subsystem == SUBSYSTEM_CONSOLE
    }

    /// The frame with the largest single stack allocation, if any function allocates.
    pub fn largest_frame(&self) -> Option<Frame> {
        self.frames.iter().copied().max_by_key(|f| f.largest_alloc)
    }

    /// Every imported function called `name`, as `dll!name`.
    pub fn imports_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.imports
            .iter()
            .filter(move |(_, names)| names.contains(name))
            .map(move |(dll, _)| format!("{dll}!{name}"))
    }
}

/// Reads `.pdata` (IMAGE_DIRECTORY_ENTRY_EXCEPTION: RUNTIME_FUNCTION entries) and each entry's
/// UNWIND_INFO. Chained unwind info adds its primary entry's allocations, so `total` is what
/// the function has on the stack after its whole prologue.
fn frames(file: &PeFile64<'_>) -> Result<Vec<Frame>> {
    let Some(dir) = file
        .data_directories()
        .get(pe::IMAGE_DIRECTORY_ENTRY_EXCEPTION)
        .filter(|d| d.size.get(LE) != 0)
    else {
        return Ok(Vec::new());
    };
    let sections = file.section_table();
    let data = file.data();
    let pdata = dir.data(data, &sections).context("reading .pdata")?;
    let mut out = Vec::with_capacity(pdata.len() / 12);
    for entry in pdata.chunks_exact(12) {
        let begin_rva = u32_at(entry, 0);
        let unwind_rva = u32_at(entry, 8);
        let mut largest_alloc = 0;
        let mut total = 0;
        let mut next = Some(unwind_rva);
        // Chains are short (a function split into a few parts); the bound stops a cycle.
        for _ in 0..32 {
            let Some(rva) = next.take() else { break };
            let info = unwind_info(data, &sections, rva)
                .with_context(|| format!("unwind info of the function at RVA {begin_rva:#x}"))?;
            largest_alloc = largest_alloc.max(info.largest_alloc);
            total += info.total;
            next = info.chained_unwind_rva;
        }
        ensure!(
            next.is_none(),
            "unwind chain of the function at RVA {begin_rva:#x} does not end"
        );
        out.push(Frame {
            begin_rva,
            largest_alloc,
            total,
        });
    }
    Ok(out)
}

struct UnwindInfo {
    largest_alloc: u32,
    total: u32,
    chained_unwind_rva: Option<u32>,
}

const UNW_FLAG_CHAININFO: u8 = 0x4;

/// Decodes one UNWIND_INFO (version 1, as LLVM and MSVC emit): the stack effect of each code.
fn unwind_info(
    data: &[u8],
    sections: &object::read::coff::SectionTable<'_>,
    rva: u32,
) -> Result<UnwindInfo> {
    let bytes = sections
        .pe_data_at(data, rva)
        .context("RVA outside every section")?;
    ensure!(bytes.len() >= 4, "truncated UNWIND_INFO");
    let (version, flags) = (bytes[0] & 0x7, bytes[0] >> 3);
    ensure!(version == 1, "UNWIND_INFO version {version} is not decoded");
    let count = usize::from(bytes[2]);
    let codes_end = 4 + 2 * count;
    ensure!(bytes.len() >= codes_end, "truncated unwind codes");
    let slot = |i: usize| u16::from_le_bytes([bytes[4 + 2 * i], bytes[5 + 2 * i]]);
    let (mut largest_alloc, mut total) = (0u32, 0u32);
    let mut i = 0;
    while i < count {
        let (op, op_info) = (bytes[5 + 2 * i] & 0xf, u32::from(bytes[5 + 2 * i] >> 4));
        let (slots, alloc, pushed) = match op {
            0 => (1, 0, 8), // UWOP_PUSH_NONVOL
            1 if op_info == 0 => {
                ensure!(i + 1 < count, "truncated UWOP_ALLOC_LARGE");
                let size = u32::from(slot(i + 1)) * 8;
                (2, size, size)
            }
            1 => {
                ensure!(i + 2 < count, "truncated UWOP_ALLOC_LARGE");
                let size = u32::from(slot(i + 1)) | u32::from(slot(i + 2)) << 16;
                (3, size, size)
            }
            2 => (1, op_info * 8 + 8, op_info * 8 + 8), // UWOP_ALLOC_SMALL
            3 => (1, 0, 0),                             // UWOP_SET_FPREG
            4 => (2, 0, 0),                             // UWOP_SAVE_NONVOL (into the frame)
            5 => (3, 0, 0),                             // UWOP_SAVE_NONVOL_FAR
            8 => (2, 0, 0),                             // UWOP_SAVE_XMM128
            9 => (3, 0, 0),                             // UWOP_SAVE_XMM128_FAR
            10 => (1, 0, if op_info == 0 { 40 } else { 48 }), // UWOP_PUSH_MACHFRAME
            other => bail!("unwind op {other} is not decoded"),
        };
        largest_alloc = largest_alloc.max(alloc);
        total += pushed;
        i += slots;
    }
    let chained_unwind_rva = if flags & UNW_FLAG_CHAININFO != 0 {
        // The primary RUNTIME_FUNCTION follows the codes, aligned to an even slot count.
        let at = 4 + 2 * (count + count % 2);
        ensure!(bytes.len() >= at + 12, "truncated chained RUNTIME_FUNCTION");
        Some(u32_at(&bytes[at..], 8))
    } else {
        None
    };
    Ok(UnwindInfo {
        largest_alloc,
        total,
        chained_unwind_rva,
    })
}

/// Offset of the optional header's CheckSum: e_lfanew + "PE\0\0" + file header + 64.
fn checksum_field_offset(data: &[u8]) -> Option<usize> {
    let lfanew = u32_at(data.get(0x3c..0x40)?, 0) as usize;
    let at = lfanew + 4 + 20 + 64;
    (at + 4 <= data.len()).then_some(at)
}

/// The PE image checksum (imagehlp's CheckSumMappedFile): 16-bit one's-complement-style sum
/// of the file with the CheckSum field taken as zero, folded, plus the file length.
pub fn pe_checksum(data: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, word) in data.chunks(2).enumerate() {
        let at = i * 2;
        if at == checksum_at || at == checksum_at + 2 {
            continue;
        }
        sum += u64::from(u16::from_le_bytes([word[0], *word.get(1).unwrap_or(&0)]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Rules for a kernel-mode driver image (`.sys`). Every driver check also rejects `__chkstk`
/// imports and any function allocating a page ([`PAGE`]) or more in one step: kernel stacks
/// are 12-24 KiB and no kernel image exports `__chkstk`.
#[derive(Debug, Clone)]
pub struct DriverRules<'a> {
    /// Exported function the entry point must be (`DriverEntry`).
    pub entry: &'a str,
    /// Kernel images the driver may import from (lower case: `ntoskrnl.exe`, `portcls.sys`, ...).
    pub allowed_imports: &'a [&'a str],
    /// `/DRIVER:WDM`: IMAGE_DLLCHARACTERISTICS_WDM_DRIVER must be set.
    pub wdm: bool,
    /// `/RELEASE`: the optional header's CheckSum must be set and match the file.
    pub checksum: bool,
}

/// Rules for a user-mode DLL.
#[derive(Debug, Clone)]
pub struct DllRules<'a> {
    pub exports: &'a [&'a str],
    pub allowed_imports: &'a [&'a str],
}

/// Rules for a user-mode program (`.exe`). `allowed_imports` entries ending in `*` match by
/// prefix (`api-ms-win-crt-*`: the UCRT's API sets).
#[derive(Debug, Clone)]
pub struct ExeRules<'a> {
    /// `IMAGE_SUBSYSTEM_WINDOWS_CUI` for console programs, `..._GUI` for windowed ones.
    pub subsystem: u16,
    pub allowed_imports: &'a [&'a str],
}

pub fn check_driver(image: &PeImage, rules: &DriverRules<'_>) -> Result<()> {
    let mut problems = Vec::new();
    check_common(image, rules.allowed_imports, &mut problems);
    if !image.is_native() {
        problems.push(format!(
            "subsystem is {}, expected NATIVE ({})",
            image.subsystem,
            pe::IMAGE_SUBSYSTEM_NATIVE.0
        ));
    }
    match image.exports.get(rules.entry) {
        None => problems.push(format!("`{}` is not exported", rules.entry)),
        Some(rva) if *rva != image.entry_rva => problems.push(format!(
            "entry point RVA {:#x} is not `{}` ({rva:#x}) but {}",
            image.entry_rva,
            rules.entry,
            image.entry_export().unwrap_or("an unexported address")
        )),
        Some(_) => {}
    }
    if rules.wdm && !image.is_wdm_driver() {
        problems.push("IMAGE_DLLCHARACTERISTICS_WDM_DRIVER not set (link with /DRIVER:WDM)".into());
    }
    if rules.checksum {
        match image.computed_checksum {
            _ if image.checksum == 0 => {
                problems.push("CheckSum is 0 (link with /RELEASE)".into());
            }
            Some(sum) if sum != image.checksum => problems.push(format!(
                "CheckSum {:#x} does not match the file ({sum:#x})",
                image.checksum
            )),
            _ => {}
        }
    }
    for import in image.imports_named("__chkstk") {
        problems.push(format!("imports {import}: a stack probe in kernel code"));
    }
    for frame in image.frames.iter().filter(|f| f.largest_alloc >= PAGE) {
        problems.push(format!(
            "the function at RVA {:#x} allocates a {}-byte stack frame (a page or more needs __chkstk; kernel stacks are small)",
            frame.begin_rva, frame.largest_alloc
        ));
    }
    finish("PE driver", problems)
}

pub fn check_dll(image: &PeImage, rules: &DllRules<'_>) -> Result<()> {
    let mut problems = Vec::new();
    check_common(image, rules.allowed_imports, &mut problems);
    if !image.is_dll() {
        problems.push("IMAGE_FILE_DLL not set".into());
    }
    for export in rules.exports {
        if !image.exports.contains_key(*export) {
            problems.push(format!("`{export}` is not exported"));
        }
    }
    finish("PE DLL", problems)
}

pub fn check_executable(image: &PeImage, rules: &ExeRules<'_>) -> Result<()> {
    let mut problems = Vec::new();
    check_common(image, rules.allowed_imports, &mut problems);
    if image.is_dll() {
        problems.push("IMAGE_FILE_DLL is set: a DLL, not a program".into());
    }
    if image.characteristics & pe::IMAGE_FILE_EXECUTABLE_IMAGE.0 == 0 {
        problems.push("IMAGE_FILE_EXECUTABLE_IMAGE not set".into());
    }
    if image.subsystem != rules.subsystem {
        problems.push(format!(
            "subsystem is {}, expected {}",
            subsystem_name(image.subsystem),
            subsystem_name(rules.subsystem)
        ));
    }
    if image.entry_rva == 0 {
        problems.push("no entry point".into());
    }
    finish("PE executable", problems)
}

fn subsystem_name(subsystem: u16) -> String {
    match subsystem {
        1 => "NATIVE (1)".into(),
        SUBSYSTEM_GUI => "WINDOWS_GUI (2)".into(),
        SUBSYSTEM_CONSOLE => "WINDOWS_CUI (3, console)".into(),
        other => other.to_string(),
    }
}

/// `allowed` holds DLL names (any case) or prefixes ending in `*`.
fn import_allowed(allowed: &[&str], dll: &str) -> bool {
    let dll = dll.to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.strip_suffix('*') {
            Some(prefix) => dll.starts_with(prefix),
            None => a == dll,
        }
    })
}

fn check_common(image: &PeImage, allowed: &[&str], problems: &mut Vec<String>) {
    if !image.is_amd64() {
        problems.push(format!("machine is {:#x}, expected AMD64", image.machine));
    }
    for dll in image.imported_dlls() {
        if !import_allowed(allowed, dll) {
            let names: Vec<&str> = image.imports[dll].iter().map(String::as_str).collect();
            problems.push(format!(
                "imports from {dll}, which is not allowed ({})",
                names.join(", ")
            ));
        }
    }
}

fn finish(what: &str, problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{what} check failed:\n  - {}", problems.join("\n  - "))
    }
}

/// A one-line summary for logs.
pub fn summary(image: &PeImage) -> String {
    let imports: Vec<String> = image
        .imports
        .iter()
        .map(|(dll, names)| {
            format!(
                "{dll}: {}",
                names.iter().cloned().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    format!(
        "machine={:#x} subsystem={} dll={} wdm={} checksum={:#x} entry={} exports={} largest frame={} imports [{}]",
        image.machine,
        image.subsystem,
        image.is_dll(),
        image.is_wdm_driver(),
        image.checksum,
        image.entry_export().unwrap_or("-"),
        image.exports.len(),
        image
            .largest_frame()
            .map_or("-".into(), |f| format!("{} B at {:#x}", f.largest_alloc, f.begin_rva)),
        imports.join("; ")
    )
}
