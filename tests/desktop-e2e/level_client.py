#!/usr/bin/env python3
"""A bare IPC client of hardmuted's level feed, written against the documented wire format
(userspace/ipc/README.md), not the Rust crate: connects to the socket, sends
{"op":"subscribe_level"}, reads for SECONDS and prints what arrived:
    subscribed=True events=N peak=P rms=R   (P, R: the largest seen)
Usage: level_client.py SOCKET SECONDS
"""
import json
import socket
import sys
import time

sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(b'{"v":1,"id":1,"op":"subscribe_level"}\n')
sock.settimeout(0.1)
end = time.monotonic() + float(sys.argv[2])
subscribed, events, peak, rms, buf = False, 0, 0.0, 0.0, b""
while time.monotonic() < end:
    try:
        chunk = sock.recv(65536)
    except socket.timeout:
        continue
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        message = json.loads(line)
        if message.get("type") == "response" and message["result"].get("kind") == "level_subscribed":
            subscribed = True
        event = message.get("event") or {}
        if event.get("kind") == "level":
            events += 1
            peak, rms = max(peak, event["peak"]), max(rms, event["rms"])
print(f"subscribed={subscribed} events={events} peak={peak:.4f} rms={rms:.4f}")
