#!/usr/bin/env python3
"""Draws Async Coder's PNG icons and favicon.ico into public/ (standard library only).

The mark: an indigo rounded square with a white prompt chevron and cursor bar, the same shapes as
public/icons/icon.svg. Run it again after changing the design; the outputs are committed.
"""
import struct
import zlib
from pathlib import Path

PUBLIC = Path(__file__).resolve().parent.parent / "public"
INDIGO = (79, 70, 229)
WHITE = (255, 255, 255)


def segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    cx, cy = ax + t * dx, ay + t * dy
    return ((px - cx) ** 2 + (py - cy) ** 2) ** 0.5


def inside_rounded_square(x, y, inset, radius):
    lo, hi = inset, 1 - inset
    if not (lo <= x <= hi and lo <= y <= hi):
        return False
    cx = min(max(x, lo + radius), hi - radius)
    cy = min(max(y, lo + radius), hi - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def colour_at(x, y, maskable):
    """Colour (with alpha) of the point (x, y) in the unit square."""
    if maskable:
        background = True  # full bleed: the platform applies its own mask
        scale, offset = 0.62, 0.19  # keep the mark inside the 80% safe zone
    else:
        background = inside_rounded_square(x, y, 0.04, 0.2)
        scale, offset = 1.0, 0.0
    if not background:
        return (0, 0, 0, 0)
    u, v = (x - offset) / scale, (y - offset) / scale
    stroke = 0.075
    chevron = min(
        segment_distance(u, v, 0.24, 0.30, 0.46, 0.50),
        segment_distance(u, v, 0.46, 0.50, 0.24, 0.70),
    )
    cursor = segment_distance(u, v, 0.54, 0.70, 0.76, 0.70)
    if min(chevron, cursor) <= stroke:
        return WHITE + (255,)
    return INDIGO + (255,)


def render(size, maskable=False, samples=4):
    rows = []
    for j in range(size):
        row = bytearray([0])  # filter type: none
        for i in range(size):
            acc = [0, 0, 0, 0]
            for sj in range(samples):
                for si in range(samples):
                    r, g, b, a = colour_at(
                        (i + (si + 0.5) / samples) / size, (j + (sj + 0.5) / samples) / size, maskable
                    )
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            n = samples * samples
            alpha = acc[3] / n
            if acc[3]:
                row += bytes(round(acc[k] / acc[3]) for k in range(3))
            else:
                row += bytes(3)
            row.append(round(alpha))
        rows.append(bytes(row))
    return png(size, b"".join(rows))


def png(size, raw):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def ico(png_bytes, size):
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png_bytes), 6 + 16)
    return header + entry + png_bytes


def main():
    icons = PUBLIC / "icons"
    icons.mkdir(parents=True, exist_ok=True)
    (icons / "icon-192.png").write_bytes(render(192))
    (icons / "icon-512.png").write_bytes(render(512, samples=2))
    (icons / "icon-maskable-512.png").write_bytes(render(512, maskable=True, samples=2))
    (PUBLIC / "favicon.ico").write_bytes(ico(render(32), 32))


if __name__ == "__main__":
    main()
