//! The default input on PipeWire, through `pw-metadata` (pipewire-bin, installed with PipeWire).
//!
//! Read: the effective default, `default.audio.source` in the `default` metadata (WirePlumber
//! computes it: the configured one if it exists, else the highest `priority.session`). Set:
//! `default.configured.audio.source`, which is what `pactl set-default-source` and the desktop's
//! sound settings write, and what WirePlumber saves across restarts. A user's later choice
//! overwrites it; hardmuted does not write it again on its own (hardmuted's `default_input` policy).
//!
//! A short-lived `pw-metadata` process per read keeps this out of the PipeWire connection the
//! gate's code owns; reads happen on status requests and at most every few seconds while idle.

use hardmute_backend::DefaultInputOs;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `node.name` of the HardMute Microphone (the node apps record from).
pub const HARDMUTE_NODE: &str = "hardmute_mic";
/// The effective default source (written by the session manager).
pub const KEY_DEFAULT: &str = "default.audio.source";
/// The user's (or HardMute's) configured default source.
pub const KEY_CONFIGURED: &str = "default.configured.audio.source";

/// A `pw-metadata` that does not answer within this is treated as a failure.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct PipeWireDefault;

impl DefaultInputOs for PipeWireDefault {
    fn current(&mut self) -> Result<Option<String>, String> {
        let out = pw_metadata(&["-n", "default", "0", KEY_DEFAULT])?;
        Ok(parse_value(&out, KEY_DEFAULT))
    }

    fn set(&mut self, name: &str) -> Result<(), String> {
        let value = serde_json::json!({ "name": name }).to_string();
        pw_metadata(&[
            "-n",
            "default",
            "0",
            KEY_CONFIGURED,
            &value,
            "Spa:String:JSON",
        ])
        .map(drop)
    }

    fn hardmute_id(&self) -> &str {
        HARDMUTE_NODE
    }
}

/// Runs `pw-metadata ARGS`, returns its stdout; a missing tool, a failure or a hang is an error.
pub fn pw_metadata(args: &[&str]) -> Result<String, String> {
    let mut child = Command::new("pw-metadata")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run pw-metadata (package pipewire-bin): {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    let _ = stdout.read_to_string(&mut out);
                }
                return if status.success() {
                    Ok(out)
                } else {
                    Err(format!("pw-metadata {} failed: {status}", args.join(" ")))
                };
            }
            Ok(None) if start.elapsed() < TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("pw-metadata did not answer (is PipeWire running?)".into());
            }
            Err(e) => return Err(format!("pw-metadata: {e}")),
        }
    }
}

/// The `name` in `KEY`'s value from `pw-metadata` output lines such as
/// `update: id:0 key:'default.audio.source' value:'{"name":"fake-mic"}' type:'Spa:String:JSON'`.
pub fn parse_value(output: &str, key: &str) -> Option<String> {
    let needle = format!("key:'{key}' value:'");
    output.lines().find_map(|line| {
        let rest = &line[line.find(&needle)? + needle.len()..];
        let json = &rest[..rest.rfind("' type:")?];
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        value.get("name")?.as_str().map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_source_line() {
        let out = "Found \"default\" metadata 19\n\
            update: id:0 key:'default.audio.sink' value:'{\"name\":\"auto_null\"}' type:'Spa:String:JSON'\n\
            update: id:0 key:'default.audio.source' value:'{\"name\":\"fake-mic\"}' type:'Spa:String:JSON'\n\
            update: id:0 key:'default.configured.audio.source' value:'{ \"name\": \"hardmute_mic\" }' type:'Spa:String:JSON'\n";
        assert_eq!(parse_value(out, KEY_DEFAULT).as_deref(), Some("fake-mic"));
        assert_eq!(
            parse_value(out, KEY_CONFIGURED).as_deref(),
            Some("hardmute_mic")
        );
        assert_eq!(
            parse_value("Found \"default\" metadata 19\n", KEY_DEFAULT),
            None
        );
        assert_eq!(
            parse_value(
                "update: id:0 key:'default.audio.source' value:'garbage' type:'x'",
                KEY_DEFAULT
            ),
            None
        );
    }
}
