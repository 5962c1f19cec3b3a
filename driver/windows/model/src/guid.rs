//! GUIDs the miniport compares and writes. Byte-for-byte the DDK's `GUID`; the kernel crate
//! asserts each constant equals the one generated from the DDK headers.

/// Same layout as the DDK `GUID` (16 bytes, 4-byte aligned).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Guid {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}
const _: () = assert!(core::mem::size_of::<Guid>() == 16 && core::mem::align_of::<Guid>() == 4);

impl Guid {
    pub const NULL: Guid = Guid::new(0, 0, 0, [0; 8]);

    pub const fn new(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Self {
        Guid {
            data1,
            data2,
            data3,
            data4,
        }
    }

    /// Reads a GUID stored little-endian (as in memory on x86_64/arm64) at `b[0..16]`.
    pub fn read_le(b: &[u8; 16]) -> Self {
        let mut data4 = [0u8; 8];
        data4.copy_from_slice(&b[8..16]);
        Guid {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4,
        }
    }

    pub fn write_le(&self, out: &mut [u8; 16]) {
        out[0..4].copy_from_slice(&self.data1.to_le_bytes());
        out[4..6].copy_from_slice(&self.data2.to_le_bytes());
        out[6..8].copy_from_slice(&self.data3.to_le_bytes());
        out[8..16].copy_from_slice(&self.data4);
    }
}

/// Every "wildcard" in KS (type, subtype, specifier) is GUID_NULL.
pub const KSDATAFORMAT_WILDCARD: Guid = Guid::NULL;
pub const KSDATAFORMAT_TYPE_AUDIO: Guid = Guid::new(
    0x7364_7561,
    0x0000,
    0x0010,
    [0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71],
);
pub const KSDATAFORMAT_SUBTYPE_PCM: Guid = Guid::new(
    0x0000_0001,
    0x0000,
    0x0010,
    [0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71],
);
pub const KSDATAFORMAT_SUBTYPE_IEEE_FLOAT: Guid = Guid::new(
    0x0000_0003,
    0x0000,
    0x0010,
    [0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71],
);
pub const KSDATAFORMAT_SPECIFIER_WAVEFORMATEX: Guid = Guid::new(
    0x0558_9f81,
    0xc356,
    0x11ce,
    [0xbf, 0x01, 0x00, 0xaa, 0x00, 0x55, 0x59, 0x5a],
);
/// Category of the WaveRT filter and the topology filter's interfaces (INF AddInterface).
pub const KSCATEGORY_AUDIO: Guid = Guid::new(
    0x6994_ad04,
    0x93ef,
    0x11d0,
    [0xa3, 0xcc, 0x00, 0xa0, 0xc9, 0x22, 0x31, 0x96],
);
pub const KSCATEGORY_CAPTURE: Guid = Guid::new(
    0x65e8_773d,
    0x8f56,
    0x11d0,
    [0xa3, 0xb9, 0x00, 0xa0, 0xc9, 0x22, 0x31, 0x96],
);
pub const KSCATEGORY_TOPOLOGY: Guid = Guid::new(
    0xdda5_4a40,
    0x1e4c,
    0x11d1,
    [0xa0, 0x50, 0x40, 0x57, 0x05, 0xc1, 0x00, 0x00],
);
/// WaveRT filters also register under KSCATEGORY_REALTIME (INF AddInterface).
pub const KSCATEGORY_REALTIME: Guid = Guid::new(
    0xeb11_5ffc,
    0x10c8,
    0x4964,
    [0x83, 0x1d, 0x6d, 0xcb, 0x02, 0xe6, 0xf2, 0x3f],
);
/// Pin categories / node types used by the two filters.
pub const KSNODETYPE_MICROPHONE: Guid = Guid::new(
    0xdff2_1be1,
    0xf70f,
    0x11d0,
    [0xb9, 0x17, 0x00, 0xa0, 0xc9, 0x22, 0x31, 0x96],
);
