-- HardMute guard for WirePlumber 0.4 (written by `hardmute guard on`). The guard script decides
-- every app client's permissions, so WirePlumber's default access script stays off; physical
-- ALSA capture nodes get no session item (WirePlumber 0.4 then never links them for apps, which
-- matters on PipeWire < 0.3.75, where the server does not check link permissions).
default_access.enabled = false
table.insert(alsa_monitor.rules, {
  matches = { { { "node.name", "matches", "alsa_input.*" } } },
  apply_properties = { ["wireplumber.is-endpoint"] = true },
})
load_script("hardmute-guard.lua")
