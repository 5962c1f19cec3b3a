#!/usr/bin/env python3
"""A minimal org.kde.StatusNotifierWatcher on the session bus, standing in for a desktop shell's
tray host so a StatusNotifierItem can register in a headless test session."""
from gi.repository import Gio, GLib

INTERFACE = """<node><interface name="org.kde.StatusNotifierWatcher">
  <method name="RegisterStatusNotifierItem"><arg name="service" type="s" direction="in"/></method>
  <method name="RegisterStatusNotifierHost"><arg name="service" type="s" direction="in"/></method>
  <property name="RegisteredStatusNotifierItems" type="as" access="read"/>
  <property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
  <property name="ProtocolVersion" type="i" access="read"/>
  <signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
  <signal name="StatusNotifierHostRegistered"/>
</interface></node>"""

registered = []


def on_method(conn, sender, path, iface, method, params, invocation):
    if method == "RegisterStatusNotifierItem":
        service = params.unpack()[0]
        # Items register either a bus name or an object path on their own connection.
        item = sender + service if service.startswith("/") else service
        registered.append(item)
        print("item registered:", item, flush=True)
        conn.emit_signal(None, path, iface, "StatusNotifierItemRegistered",
                         GLib.Variant("(s)", (item,)))
    invocation.return_value(None)


def on_property(conn, sender, path, iface, name):
    return {
        "RegisteredStatusNotifierItems": GLib.Variant("as", registered),
        "IsStatusNotifierHostRegistered": GLib.Variant("b", True),
        "ProtocolVersion": GLib.Variant("i", 0),
    }[name]


def on_bus(conn, _name):
    info = Gio.DBusNodeInfo.new_for_xml(INTERFACE)
    conn.register_object("/StatusNotifierWatcher", info.interfaces[0], on_method, on_property, None)


def on_name(_conn, name):
    print("watcher owns", name, flush=True)


Gio.bus_own_name(Gio.BusType.SESSION, "org.kde.StatusNotifierWatcher",
                 Gio.BusNameOwnerFlags.NONE, on_bus, on_name, None)
GLib.MainLoop().run()
