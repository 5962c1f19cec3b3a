//! The WaveRT capture filter (`IMiniportWaveRT`) and its pins.

use crate::format::{
    data_range_intersection, parse_stream_format, AudioRange, Intersection, StreamFormat,
    CAPTURE_RANGES,
};
use crate::status::*;
use crate::stream::CaptureStream;

/// Name the wave filter is registered under (`PcRegisterSubdevice`) = INF reference string.
pub const WAVE_SUBDEVICE_NAME: &str = "Wave";
/// Name of the topology filter = INF reference string.
pub const TOPOLOGY_SUBDEVICE_NAME: &str = "Topology";

/// Hardware ID of the root-enumerated device (INF models section; the installer creates it).
pub const HARDWARE_ID: &str = "Root\\HardMuteMic";
/// File name of the driver image in the package (the build's hardmute_windows_kernel.dll, renamed).
pub const DRIVER_FILE: &str = "hardmute.sys";

/// Wave filter pins: 0 = host capture pin (streams out to the audio engine / apps),
/// 1 = bridge pin (analog in from the topology filter, not streamable).
pub const WAVE_PIN_HOST: u32 = 0;
pub const WAVE_PIN_BRIDGE: u32 = 1;
/// Topology pins: 0 = microphone bridge in (KSNODETYPE_MICROPHONE), 1 = line out to wave.
pub const TOPO_PIN_MIC: u32 = 0;
pub const TOPO_PIN_LINEOUT: u32 = 1;

/// At most one capture stream at a time (the shared-mode engine or one exclusive client).
pub const MAX_CAPTURE_STREAMS: u32 = 1;

#[derive(Debug, Default)]
pub struct WaveMiniport {
    open_streams: u32,
}

impl WaveMiniport {
    pub const fn new() -> Self {
        WaveMiniport { open_streams: 0 }
    }

    pub fn open_streams(&self) -> u32 {
        self.open_streams
    }

    /// `IMiniportWaveRT::NewStream`: validates pin, direction and format, then counts the
    /// instance. The glue places the returned stream into its pool allocation and must call
    /// [`stream_closed`](Self::stream_closed) when that object is released.
    pub fn new_stream(
        &mut self,
        pin: u32,
        capture: bool,
        format: &[u8],
        qpc_freq: u64,
    ) -> Result<CaptureStream, NtStatus> {
        if pin != WAVE_PIN_HOST || !capture {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let format: StreamFormat = parse_stream_format(format)?;
        if self.open_streams >= MAX_CAPTURE_STREAMS {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        self.open_streams += 1;
        Ok(CaptureStream::new(format, qpc_freq))
    }

    pub fn stream_closed(&mut self) {
        self.open_streams = self.open_streams.saturating_sub(1);
    }

    /// `IMiniport::DataRangeIntersection`: `ours_index` is the index of the pin's range
    /// PortCls paired with the client's (the glue finds it by address in its table).
    pub fn data_range_intersection(
        &self,
        pin: u32,
        client: &[u8],
        ours_index: usize,
        out: &mut [u8],
    ) -> Intersection {
        match (pin, CAPTURE_RANGES.get(ours_index)) {
            (WAVE_PIN_HOST, Some(ours)) => data_range_intersection(client, ours, out),
            // Not ours to decide (bridge pin): PortCls' default handler.
            _ => Intersection {
                status: STATUS_NOT_IMPLEMENTED,
                result_len: 0,
            },
        }
    }

    pub fn ranges(&self) -> &'static [AudioRange] {
        &CAPTURE_RANGES
    }
}
