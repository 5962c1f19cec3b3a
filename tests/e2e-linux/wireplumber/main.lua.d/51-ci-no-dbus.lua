-- e2e: no D-Bus session bus. The flatpak portal permission store needs D-Bus and is fatal in WP 0.4.
default_access.properties["enable-flatpak-portal"] = false
alsa_monitor.properties["alsa.reserve"] = false
alsa_monitor.enabled = false
v4l2_monitor.enabled = false
libcamera_monitor.enabled = false
