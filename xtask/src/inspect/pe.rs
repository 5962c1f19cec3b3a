//! PE32+ facts the Windows checks assert on, read with the `object` crate: machine, subsystem,
//! DLL flag, entry point, exports (name -> RVA) and imports (DLL -> functions).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use object::pe;
use object::read::pe::{ExportTarget, ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};
use object::LittleEndian as LE;

#[derive(Debug, Clone)]
pub struct PeImage {
    pub machine: u16,
    pub subsystem: u16,
    /// COFF characteristics (IMAGE_FILE_DLL, ...).
    pub characteristics: u16,
    pub entry_rva: u32,
    pub checksum: u32,
    /// Exported names and their RVAs (forwarders are left out).
    pub exports: BTreeMap<String, u32>,
    /// Imported DLL (lower case) -> imported names (`#n` for ordinals).
    pub imports: BTreeMap<String, BTreeSet<String>>,
}

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
            entry_rva: opt.address_of_entry_point(),
            checksum: opt.check_sum(),
            exports: BTreeMap::new(),
            imports: BTreeMap::new(),
        };
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
}

/// Rules for a kernel-mode driver image (`.sys`).
#[derive(Debug, Clone)]
pub struct DriverRules<'a> {
    /// Exported function the entry point must be (`DriverEntry`).
    pub entry: &'a str,
    /// Kernel images the driver may import from (lower case: `ntoskrnl.exe`, `portcls.sys`, ...).
    pub allowed_imports: &'a [&'a str],
}

/// Rules for a user-mode DLL.
#[derive(Debug, Clone)]
pub struct DllRules<'a> {
    pub exports: &'a [&'a str],
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

fn check_common(image: &PeImage, allowed: &[&str], problems: &mut Vec<String>) {
    if !image.is_amd64() {
        problems.push(format!("machine is {:#x}, expected AMD64", image.machine));
    }
    for dll in image.imported_dlls() {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(dll)) {
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
        "machine={:#x} subsystem={} dll={} entry={} exports={} imports [{}]",
        image.machine,
        image.subsystem,
        image.is_dll(),
        image.entry_export().unwrap_or("-"),
        image.exports.len(),
        imports.join("; ")
    )
}
