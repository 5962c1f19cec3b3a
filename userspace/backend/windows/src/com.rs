//! COM apartment for the calling thread.

use crate::{AudioError, AudioResult};
use std::marker::PhantomData;
use windows::Win32::Foundation::RPC_E_CHANGED_MODE;
use windows::Win32::System::Com::{CoInitializeEx, CoUninitialize, COINIT_MULTITHREADED};

/// Joins the multithreaded apartment for as long as it lives (WASAPI objects are free-threaded,
/// and an MTA needs no message pump). Not `Send`: COM initialisation is per thread.
pub struct ComApartment {
    initialized: bool,
    _per_thread: PhantomData<*const ()>,
}

impl ComApartment {
    pub fn multithreaded() -> AudioResult<Self> {
        // SAFETY: no pointers; balanced by CoUninitialize in Drop when it succeeded (S_OK and
        // S_FALSE both count as a reference).
        let hr = unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) };
        if hr.is_ok() {
            Ok(ComApartment {
                initialized: true,
                _per_thread: PhantomData,
            })
        } else if hr == RPC_E_CHANGED_MODE {
            // The thread is already in a single-threaded apartment: COM works, and that
            // apartment is not ours to leave.
            Ok(ComApartment {
                initialized: false,
                _per_thread: PhantomData,
            })
        } else {
            Err(AudioError::new("CoInitializeEx", hr.0, hr.message()))
        }
    }
}

impl Drop for ComApartment {
    fn drop(&mut self) {
        if self.initialized {
            // SAFETY: balances the successful CoInitializeEx of this thread.
            unsafe { CoUninitialize() };
        }
    }
}
