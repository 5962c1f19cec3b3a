#!/usr/bin/env python3
"""Draws the tray/window icons (64x64 RGBA PNG) with no dependencies: a coloured disc with a
white microphone, struck through when muted. Run it from this folder to regenerate them."""
import math, struct, zlib

SIZE = 64

def inside_capsule(x, y):
    # The mic head: a vertical capsule centred at (32, 24).
    cx, top, bottom, r = 32.0, 16.0, 30.0, 7.0
    if top <= y <= bottom:
        return abs(x - cx) <= r
    cy = top if y < top else bottom
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

def on_stand(x, y):
    # The U-shaped holder, the stem and the foot.
    d = math.hypot(x - 32, y - 30)
    if y >= 30 and 10.5 <= d <= 13.5:
        return True
    if abs(x - 32) <= 1.6 and 43 <= y <= 49:
        return True
    return abs(y - 49) <= 1.6 and abs(x - 32) <= 8

def on_slash(x, y):
    # A diagonal from top-left to bottom-right, 4 px wide.
    return abs((x - y)) / math.sqrt(2) <= 2.6 and 12 <= x <= 52

def pixel(x, y, rgb, slash):
    px, py = x + 0.5, y + 0.5
    d = math.hypot(px - 32, py - 32)
    if d > 31:
        return (0, 0, 0, 0)
    alpha = 255 if d <= 30 else int(255 * (31 - d))
    if slash and on_slash(px, py):
        return (255, 255, 255, alpha)
    if slash and abs((px - py)) / math.sqrt(2) <= 4.6 and 12 <= px <= 52:
        return rgb + (alpha,)  # a gap in the colour of the disc around the slash
    if inside_capsule(px, py) or on_stand(px, py):
        return (255, 255, 255, alpha)
    return rgb + (alpha,)

def write_png(path, rgb, slash):
    raw = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y, rgb, slash)) for x in range(SIZE)) for y in range(SIZE)
    )
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)

write_png("muted.png", (0xB7, 0x1C, 0x1C), True)
write_png("live.png", (0x1B, 0x5E, 0x20), False)
write_png("offline.png", (0x61, 0x61, 0x61), True)
