//! Who is capturing: audio sessions per capture endpoint (IAudioSessionManager2).

use crate::devices::{device_id, enumerator, friendly_name};
use crate::{AudioError, AudioResult, SessionInfo};
use windows::core::{Interface, PWSTR};
use windows::Win32::Foundation::CloseHandle;
use windows::Win32::Media::Audio::{
    eCapture, AudioSessionStateActive, IAudioSessionControl2, IAudioSessionManager2,
    DEVICE_STATE_ACTIVE,
};
use windows::Win32::System::Com::CLSCTX_ALL;
use windows::Win32::System::Threading::{
    OpenProcess, QueryFullProcessImageNameW, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// The image path of process `pid`, if this user may query it.
pub fn process_image(pid: u32) -> Option<String> {
    if pid == 0 {
        return None;
    }
    // SAFETY: the handle is closed once; the buffer and its length are consistent.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, pid).ok()?;
        let mut buf = [0u16; 1024];
        let mut len = buf.len() as u32;
        let ok = QueryFullProcessImageNameW(
            process,
            PROCESS_NAME_WIN32,
            PWSTR(buf.as_mut_ptr()),
            &mut len,
        );
        let _ = CloseHandle(process);
        ok.ok()?;
        Some(String::from_utf16_lossy(&buf[..len as usize]))
    }
}

/// Every session on every active capture endpoint. The caller's thread must be in a COM
/// apartment.
pub fn capture_sessions() -> AudioResult<Vec<SessionInfo>> {
    let enumerator = enumerator()?;
    let mut sessions = Vec::new();
    // SAFETY: plain COM calls on live interfaces; indices are below the reported counts.
    unsafe {
        let collection = enumerator
            .EnumAudioEndpoints(eCapture, DEVICE_STATE_ACTIVE)
            .map_err(|e| AudioError::from_win("EnumAudioEndpoints(eCapture)", e))?;
        let count = collection
            .GetCount()
            .map_err(|e| AudioError::from_win("GetCount", e))?;
        for i in 0..count {
            let device = collection
                .Item(i)
                .map_err(|e| AudioError::from_win("IMMDeviceCollection::Item", e))?;
            let endpoint_id = device_id(&device)?;
            let endpoint_name = friendly_name(&device).unwrap_or_else(|_| endpoint_id.clone());
            let manager: IAudioSessionManager2 = device
                .Activate(CLSCTX_ALL, None)
                .map_err(|e| AudioError::from_win("activating IAudioSessionManager2", e))?;
            let list = manager
                .GetSessionEnumerator()
                .map_err(|e| AudioError::from_win("GetSessionEnumerator", e))?;
            let n = list
                .GetCount()
                .map_err(|e| AudioError::from_win("IAudioSessionEnumerator::GetCount", e))?;
            for j in 0..n {
                let Ok(control) = list.GetSession(j) else {
                    continue; // a session that went away while we looked
                };
                let Ok(control2) = control.cast::<IAudioSessionControl2>() else {
                    continue;
                };
                let pid = control2.GetProcessId().unwrap_or(0);
                let active = control
                    .GetState()
                    .is_ok_and(|state| state == AudioSessionStateActive);
                sessions.push(SessionInfo {
                    endpoint_id: endpoint_id.clone(),
                    endpoint_name: endpoint_name.clone(),
                    pid,
                    exe: process_image(pid),
                    active,
                });
            }
        }
    }
    Ok(sessions)
}
