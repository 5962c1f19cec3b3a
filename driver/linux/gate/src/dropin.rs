//! The `pipewire.conf.d` drop-in that loads the gate into the PipeWire server. `hardmute
//! install` writes it; the e2e rig loads the very same text into its private PipeWire.
//!
//! What it makes (PipeWire's `module-filter-chain`, one LADSPA node, mono):
//! - `hardmute_capture` (Stream/Input/Audio): `node.passive = true`, so a link from the physical
//!   source does not keep that source running: it runs only while an app records HardMute.
//!   `node.autoconnect = false`: only hardmuted links it, to the source the user chose, never
//!   to HardMute itself. A link someone else adds lands here, *before* the gate.
//! - `hardmute_mic` ("HardMute Microphone", `Audio/Source`, `node.virtual = true`): what apps
//!   record. It has output ports only, so nothing can be linked in after the gate.
//!   (`Audio/Source/Virtual` on filter-chain's playback stream negotiates no format on
//!   PipeWire 0.3.65 and 1.4: apps got no samples. `node.virtual` marks it virtual instead.)
//!   `priority.session = `[`SESSION_PRIORITY`]: with no default the user configured, the
//!   session manager picks the source with the highest session priority as the default input,
//!   and this is above what it gives real microphones, so apps that record "the default" get
//!   HardMute. A default the user set explicitly still wins (WirePlumber's
//!   `default.configured.audio.source`).
//!
//! Failure mode: the module entry carries `flags = [ nofail ]`. A missing or broken plugin then
//! leaves PipeWire running without HardMute Microphone (hardmuted reports it missing), instead of
//! PipeWire exiting at start and taking every app's audio with it. See docs/data-path.md.

/// `priority.session` of `hardmute_mic`. WirePlumber (0.4 and 0.5) gives ALSA sources about
/// 2000 (+ a few per port/profile), Bluetooth and network sources less; this is well above
/// every such automatic value.
pub const SESSION_PRIORITY: u32 = 10_000;

/// The drop-in's file name (under `~/.config/pipewire/pipewire.conf.d/`).
pub const FILE_NAME: &str = "50-hardmute.conf";

/// The drop-in for a plugin at `plugin_path` (absolute). `mandatory = true` drops `nofail`
/// (PipeWire then refuses to start without a working gate; offered for tests and for users who
/// prefer no audio at all to a missing HardMute).
pub fn render(plugin_path: &str, mandatory: bool) -> String {
    let flags = if mandatory {
        ""
    } else {
        "\n      flags = [ nofail ]"
    };
    let plugin = plugin_path.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"# HardMute Microphone: the gate inside PipeWire. Written by `hardmute install`; removed by
# `hardmute uninstall`. The node apps record from (hardmute_mic) is fed only by the gate; the
# physical source links into hardmute_capture (done by hardmuted), before the gate.
context.modules = [
    {{ name = libpipewire-module-filter-chain{flags}
      args = {{
        node.description = "HardMute Microphone"
        media.name       = "HardMute Microphone"
        filter.graph = {{
          nodes = [
            {{ type = ladspa name = gate plugin = "{plugin}" label = {label} }}
          ]
          inputs  = [ "gate:In" ]
          outputs = [ "gate:Out" ]
        }}
        capture.props = {{
          node.name        = {capture}
          node.description = "HardMute gate input"
          node.passive     = true
          node.autoconnect = false
          node.dont-reconnect = true
          audio.channels   = 1
          audio.position   = [ MONO ]
          {marker} = {marker_capture}
        }}
        playback.props = {{
          node.name        = {source}
          node.description = "{description}"
          media.class      = Audio/Source
          node.virtual     = true
          priority.session = {priority}
          audio.channels   = 1
          audio.position   = [ MONO ]
          {marker} = {marker_source}
        }}
      }}
    }}
]
"#,
        label = crate::abi::PLUGIN_LABEL,
        capture = crate::abi::CAPTURE_NODE_NAME,
        source = crate::abi::SOURCE_NODE_NAME,
        description = crate::abi::SOURCE_NODE_DESCRIPTION,
        priority = SESSION_PRIORITY,
        marker = crate::abi::MARKER_KEY,
        marker_capture = crate::abi::MARKER_CAPTURE,
        marker_source = crate::abi::MARKER_SOURCE,
    )
}

/// Where the .deb puts the plugin (`hardmute install` finds it there).
pub const PACKAGED_PLUGIN: &str = "/usr/lib/hardmute/libhardmute_linux_gate.so";

#[cfg(test)]
mod tests {
    use super::*;

    /// The .deb ships the drop-in rendered for its plugin path (installer/linux/debian/).
    #[test]
    fn the_packaged_dropin_is_the_rendered_one() {
        let shipped = include_str!("../../../../installer/linux/debian/50-hardmute.conf");
        assert_eq!(shipped, render(PACKAGED_PLUGIN, false));
    }

    #[test]
    fn the_dropin_names_the_plugin_and_both_nodes() {
        let d = render("/usr/lib/hardmute/libhardmute_linux_gate.so", false);
        assert!(d.contains(
            r#"plugin = "/usr/lib/hardmute/libhardmute_linux_gate.so" label = hardmute_gate"#
        ));
        assert!(d.contains("node.name        = hardmute_mic"));
        assert!(d.contains("node.name        = hardmute_capture"));
        assert!(d.contains("node.passive     = true"));
        // Only the node apps record carries the session priority (the capture side is a
        // stream, never a default candidate).
        assert_eq!(d.matches("priority.session = 10000").count(), 1);
        let playback = d.split("playback.props").nth(1).unwrap();
        assert!(playback.contains("priority.session = 10000"));
        assert!(d.contains("flags = [ nofail ]"));
        assert!(!render("/x.so", true).contains("nofail"));
        assert!(render(r#"/a"b.so"#, false).contains(r#"plugin = "/a\"b.so""#));
    }
}
