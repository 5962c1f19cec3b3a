//! Mapping one x86_64 Mach-O bundle into this process the way dyld would: segments at their
//! relative addresses with their protections, rebases and binds from the classic dyld info
//! (`LC_DYLD_INFO_ONLY`, the format the cross-check pins with `-no_fixup_chains`), thread-local
//! variable descriptors pointed at the shim's `tlv_get_addr`, module initialisers run, exports
//! looked up in the export trie.

use std::collections::BTreeMap;
use std::fmt;

use object::macho;
use object::read::macho::{
    ExportData, FatArch, LoadCommandVariant, MachHeader, MachOFatFile32, MachOFile64, Section,
    Segment,
};
use object::Endianness;

use crate::shim::{self, Resolved};
use crate::tlv;

const PAGE: usize = 4096;

/// Why an image could not be loaded (every case names what it met).
#[derive(Debug)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for LoadError {}

impl From<object::Error> for LoadError {
    fn from(e: object::Error) -> Self {
        LoadError(format!("Mach-O: {e}"))
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError(msg.into()))
}

/// The x86_64 slice of a universal file, or the file itself if it is a thin x86_64 image.
pub fn x86_64_slice(data: &[u8]) -> Result<&[u8], LoadError> {
    if data.len() >= 4
        && u32::from_be_bytes([data[0], data[1], data[2], data[3]]) == macho::FAT_MAGIC
    {
        let fat = MachOFatFile32::parse(data)?;
        for arch in fat.arches() {
            if arch.cputype() == macho::CPU_TYPE_X86_64 {
                return Ok(arch.data(data)?);
            }
        }
        return err("the universal file has no x86_64 slice");
    }
    Ok(data)
}

/// How one import was bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundImport {
    pub symbol: String,
    pub library: String,
    /// true: a shim implements it; false: bound to a trap that aborts with its name.
    pub implemented: bool,
    /// Pointer slots written for it (GOT, lazy pointers, data references).
    pub slots: usize,
}

/// A loaded image. The mapping stays for the life of the process (the plug-in's code may be
/// running on other threads, and coreaudiod never unloads a plug-in either): dropping an `Image`
/// does not unmap it.
pub struct Image {
    base: usize,
    size: usize,
    /// Address of the mach header (where export-trie offsets count from).
    header: usize,
    exports: BTreeMap<String, usize>,
    imports: Vec<BoundImport>,
    /// Every section: (segment, section, mapped address, length).
    sections: Vec<(String, String, usize, usize)>,
    /// Fixup format found (always dyld info; kept for reports).
    pub rebases: usize,
    pub binds: usize,
    pub tlv_descriptors: usize,
    pub initializers: usize,
}

struct Seg {
    vmaddr: u64,
    vmsize: u64,
    fileoff: u64,
    filesize: u64,
    initprot: u32,
    name: String,
}

impl Image {
    /// Maps and links an x86_64 MH_BUNDLE. `data` is a thin image (see [`x86_64_slice`]).
    pub fn load(data: &[u8]) -> Result<Image, LoadError> {
        let file = MachOFile64::<Endianness>::parse(data)?;
        let endian = file.endian();
        let header = file.macho_header();
        if header.cputype(endian) != macho::CPU_TYPE_X86_64 {
            return err("not an x86_64 image");
        }
        if header.filetype(endian) != macho::MH_BUNDLE {
            return err(format!(
                "file type {:#x}, expected MH_BUNDLE",
                header.filetype(endian).0
            ));
        }

        // ---- load commands ----
        let mut segs: Vec<Seg> = Vec::new();
        let mut libraries: Vec<String> = Vec::new();
        let mut dyld_info = None;
        let mut commands = header.load_commands(endian, data, 0)?;
        while let Some(command) = commands.next()? {
            match command.variant()? {
                LoadCommandVariant::Segment64(seg, _) => segs.push(Seg {
                    vmaddr: seg.vmaddr(endian),
                    vmsize: seg.vmsize(endian),
                    fileoff: seg.fileoff(endian),
                    filesize: seg.filesize(endian),
                    initprot: seg.initprot(endian).0,
                    name: String::from_utf8_lossy(seg.name()).into_owned(),
                }),
                LoadCommandVariant::Dylib(d) => libraries.push(
                    String::from_utf8_lossy(command.string(endian, d.dylib.name)?).into_owned(),
                ),
                LoadCommandVariant::DyldInfo(info) => dyld_info = Some(info),
                LoadCommandVariant::LinkeditData(_)
                    if command.cmd() == macho::LC_DYLD_CHAINED_FIXUPS =>
                {
                    return err("LC_DYLD_CHAINED_FIXUPS: this loader reads the classic dyld info the cross-check pins (-no_fixup_chains)");
                }
                _ => {}
            }
        }
        let Some(info) = dyld_info else {
            return err("no LC_DYLD_INFO(_ONLY): nothing says how to rebase and bind");
        };
        if segs.is_empty() {
            return err("no segments");
        }
        let low = segs.iter().map(|s| s.vmaddr).min().unwrap_or(0);
        let high = segs.iter().map(|s| s.vmaddr + s.vmsize).max().unwrap_or(0);
        let size = ((high - low) as usize).div_ceil(PAGE) * PAGE;
        for s in &segs {
            if s.vmaddr % PAGE as u64 != 0 {
                return err(format!("segment {} not page aligned", s.name));
            }
            if s.filesize > s.vmsize || (s.fileoff + s.filesize) as usize > data.len() {
                return err(format!("segment {} has bad file range", s.name));
            }
        }

        // ---- map (read/write while linking) ----
        // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return err(format!("mmap of {size} bytes failed"));
        }
        let base = base as usize;
        let mem = Memory { base, size, low };
        for s in &segs {
            let bytes = &data[s.fileoff as usize..(s.fileoff + s.filesize) as usize];
            mem.write_bytes(s.vmaddr, bytes)?;
        }
        let slide = (base as u64).wrapping_sub(low);

        // ---- rebases ----
        let mut rebases = 0;
        let mut iter = info.rebases(endian, data, 8)?;
        while let Some(r) = iter.next()? {
            if r.kind != macho::REBASE_TYPE_POINTER {
                return err(format!("rebase type {} unsupported", r.kind.0));
            }
            let seg = segs
                .get(r.segment_index as usize)
                .ok_or_else(|| LoadError(format!("rebase in segment {}", r.segment_index)))?;
            let at = seg.vmaddr + r.segment_offset;
            let v = mem.read_u64(at)?;
            mem.write_u64(at, v.wrapping_add(slide))?;
            rebases += 1;
        }

        // ---- binds (regular and lazy, all bound now; weak binds keep our own definitions) ----
        let mut imports: BTreeMap<(String, String), BoundImport> = BTreeMap::new();
        let mut binds = 0;
        for lazy in [false, true] {
            let mut iter = if lazy {
                info.lazy_binds(endian, data, 8)?
            } else {
                info.binds(endian, data, 8)?
            };
            while let Some(b) = iter.next()? {
                if b.kind != macho::BIND_TYPE_POINTER {
                    return err(format!("bind type {} unsupported", b.kind.0));
                }
                let symbol = String::from_utf8_lossy(b.symbol).into_owned();
                let library = match b.dylib.index() {
                    Some(i) if i >= 1 && (i as usize) <= libraries.len() => {
                        libraries[i as usize - 1].clone()
                    }
                    _ => {
                        return err(format!(
                            "{symbol}: bind ordinal {} is not a library (flat or self binds are not loaded)",
                            b.dylib.0
                        ))
                    }
                };
                let Resolved { addr, implemented } = shim::resolve(&symbol, &library);
                let seg = segs
                    .get(b.segment_index as usize)
                    .ok_or_else(|| LoadError(format!("bind in segment {}", b.segment_index)))?;
                mem.write_u64(
                    seg.vmaddr + b.segment_offset,
                    (addr as u64).wrapping_add(b.addend as u64),
                )?;
                binds += 1;
                imports
                    .entry((symbol.clone(), library.clone()))
                    .or_insert(BoundImport {
                        symbol,
                        library,
                        implemented,
                        slots: 0,
                    })
                    .slots += 1;
            }
        }

        // ---- sections: thread-local variables, initialisers ----
        let mut tlv_template: Option<(u64, u64)> = None;
        let mut tlv_descriptor_ranges = Vec::new();
        let mut init_pointers = Vec::new();
        let mut init_offsets = Vec::new();
        let mut sections = Vec::new();
        let mut commands = header.load_commands(endian, data, 0)?;
        while let Some(command) = commands.next()? {
            if let Some((seg, section_data)) = command.segment_64()? {
                for section in seg.sections(endian, section_data)? {
                    let kind = section.flags(endian).typ();
                    let (addr, len) = (section.addr(endian), section.size(endian));
                    sections.push((
                        String::from_utf8_lossy(section.segment_name()).into_owned(),
                        String::from_utf8_lossy(section.name()).into_owned(),
                        mem.at(addr, len)?,
                        len as usize,
                    ));
                    match kind {
                        macho::S_THREAD_LOCAL_REGULAR | macho::S_THREAD_LOCAL_ZEROFILL => {
                            let (lo, hi) = tlv_template.unwrap_or((addr, addr + len));
                            tlv_template = Some((lo.min(addr), hi.max(addr + len)));
                        }
                        macho::S_THREAD_LOCAL_VARIABLES => tlv_descriptor_ranges.push((addr, len)),
                        macho::S_MOD_INIT_FUNC_POINTERS => init_pointers.push((addr, len)),
                        macho::S_INIT_FUNC_OFFSETS => init_offsets.push((addr, len)),
                        macho::S_MOD_TERM_FUNC_POINTERS => {}
                        _ => {}
                    }
                }
            }
        }
        let mut tlv_descriptors = 0;
        if !tlv_descriptor_ranges.is_empty() {
            let (lo, hi) = tlv_template.unwrap_or((0, 0));
            let template = if hi > lo {
                mem.slice(lo, hi - lo)?.to_vec()
            } else {
                Vec::new()
            };
            let key = tlv::register_image(template);
            for (addr, len) in tlv_descriptor_ranges {
                if len % 24 != 0 {
                    return err("__thread_vars size is not a multiple of 24");
                }
                for i in 0..len / 24 {
                    let d = addr + i * 24;
                    // thunk: bound to __tlv_bootstrap above; dyld replaces it by tlv_get_addr.
                    mem.write_u64(d, tlv::get_addr_thunk() as u64)?;
                    mem.write_u64(d + 8, key as u64)?;
                    tlv_descriptors += 1;
                }
            }
        }

        // ---- protections ----
        for s in &segs {
            if s.vmsize == 0 {
                continue;
            }
            let start = base + (s.vmaddr - low) as usize;
            let len = (s.vmsize as usize).div_ceil(PAGE) * PAGE;
            // SAFETY: the range lies inside our own mapping (checked sizes above); VM_PROT_* bits
            // equal PROT_* bits (read 1, write 2, execute 4).
            let rc =
                unsafe { libc::mprotect(start as *mut libc::c_void, len, s.initprot as i32 & 7) };
            if rc != 0 {
                return err(format!("mprotect {} failed", s.name));
            }
        }

        // ---- exports ----
        let text = segs
            .iter()
            .find(|s| s.name == "__TEXT")
            .ok_or_else(|| LoadError("no __TEXT segment".into()))?;
        let header_addr = base + (text.vmaddr - low) as usize;
        let mut exports = BTreeMap::new();
        let mut commands = header.load_commands(endian, data, 0)?;
        while let Some(command) = commands.next()? {
            if let Some(info) = command.dyld_info()? {
                let mut trie = info.exports_trie(endian, data)?;
                while let Some(symbol) = trie.next()? {
                    if let ExportData::Regular { address } = symbol.data() {
                        exports.insert(
                            String::from_utf8_lossy(symbol.name()).into_owned(),
                            header_addr + *address as usize,
                        );
                    }
                }
            }
        }

        let mut image = Image {
            base,
            size,
            header: header_addr,
            exports,
            imports: imports.into_values().collect(),
            sections,
            rebases,
            binds,
            tlv_descriptors,
            initializers: 0,
        };

        // ---- initialisers (dyld runs them before anyone can look up an export) ----
        for (addr, len) in init_pointers {
            for i in 0..len / 8 {
                let f = mem.read_u64(addr + i * 8)? as usize;
                image.run_initializer(f)?;
            }
        }
        for (addr, len) in init_offsets {
            for i in 0..len / 4 {
                let off = mem.read_u32(addr + i * 4)? as usize;
                image.run_initializer(header_addr + off)?;
            }
        }
        Ok(image)
    }

    fn run_initializer(&mut self, f: usize) -> Result<(), LoadError> {
        if !self.contains(f) {
            return err(format!("initialiser {f:#x} outside the image"));
        }
        type Init = unsafe extern "C" fn(i32, *const *const u8, *const *const u8, *const *const u8);
        let empty: [*const u8; 1] = [std::ptr::null()];
        // SAFETY: `f` is a module initialiser inside the mapped, linked image; dyld calls them with
        // (argc, argv, envp, apple), which we pass as empty vectors.
        unsafe {
            let init: Init = std::mem::transmute::<usize, Init>(f);
            init(0, empty.as_ptr(), empty.as_ptr(), empty.as_ptr());
        }
        self.initializers += 1;
        Ok(())
    }

    fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr < self.base + self.size
    }

    /// The address of an exported symbol (C name with the leading `_`).
    pub fn export(&self, name: &str) -> Option<usize> {
        self.exports.get(name).copied()
    }

    /// Every exported name.
    pub fn exports(&self) -> impl Iterator<Item = &str> {
        self.exports.keys().map(String::as_str)
    }

    /// Every import and what it was bound to.
    pub fn imports(&self) -> &[BoundImport] {
        &self.imports
    }

    /// Imports bound to a trap (no shim implements them).
    pub fn trapped_imports(&self) -> Vec<&str> {
        self.imports
            .iter()
            .filter(|i| !i.implemented)
            .map(|i| i.symbol.as_str())
            .collect()
    }

    /// Where the mach header was mapped.
    pub fn header_address(&self) -> usize {
        self.header
    }

    /// Where section `segment,section` is mapped (address, length), if the image has it.
    pub fn section(&self, segment: &str, section: &str) -> Option<(usize, usize)> {
        self.sections
            .iter()
            .find(|(g, n, _, _)| g == segment && n == section)
            .map(|&(_, _, addr, len)| (addr, len))
    }

    /// The mapped range (base, length).
    pub fn range(&self) -> (usize, usize) {
        (self.base, self.size)
    }
}

/// The mapping during linking, addressed by the image's own virtual addresses.
struct Memory {
    base: usize,
    size: usize,
    low: u64,
}

impl Memory {
    fn at(&self, vmaddr: u64, len: u64) -> Result<usize, LoadError> {
        let off = vmaddr
            .checked_sub(self.low)
            .filter(|off| {
                off.checked_add(len)
                    .is_some_and(|end| end <= self.size as u64)
            })
            .ok_or_else(|| LoadError(format!("address {vmaddr:#x}+{len} outside the image")))?;
        Ok(self.base + off as usize)
    }
    fn slice(&self, vmaddr: u64, len: u64) -> Result<&[u8], LoadError> {
        let p = self.at(vmaddr, len)?;
        // SAFETY: `at` checked the range lies inside the live read/write mapping.
        Ok(unsafe { std::slice::from_raw_parts(p as *const u8, len as usize) })
    }
    fn write_bytes(&self, vmaddr: u64, bytes: &[u8]) -> Result<(), LoadError> {
        let p = self.at(vmaddr, bytes.len() as u64)?;
        // SAFETY: the range is inside the read/write mapping and does not overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, bytes.len()) };
        Ok(())
    }
    fn read_u64(&self, vmaddr: u64) -> Result<u64, LoadError> {
        let b = self.slice(vmaddr, 8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn read_u32(&self, vmaddr: u64) -> Result<u32, LoadError> {
        let b = self.slice(vmaddr, 4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn write_u64(&self, vmaddr: u64, v: u64) -> Result<(), LoadError> {
        self.write_bytes(vmaddr, &v.to_le_bytes())
    }
}
