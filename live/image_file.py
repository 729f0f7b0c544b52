"""Image files every command reads (portraits, image inputs): refused when truncated, not decoded half-grey.

OpenCV decodes a JPEG whose end is missing without an error: libjpeg fills the rest with grey and only prints
"Premature end of JPEG file". `truncated()` reads the file's markers instead: a JPEG is complete when its
entropy-coded scans end in the end-of-image marker (data after it, e.g. a motion photo's video, is allowed).
"""

from __future__ import annotations

from pathlib import Path

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: markers without a length


def jpeg_complete(data: bytes) -> bool:
    """Whether JPEG bytes reach their end-of-image marker after the last scan."""
    pos = 2  # after SOI
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return False  # not at a marker: damaged
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == EOI:
            return True
        if marker in STANDALONE:
            pos += 2
            continue
        if pos + 4 > len(data):
            return False
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        pos += 2 + length
        if marker != SOS:
            continue
        while True:  # entropy-coded data: up to the next marker that is not stuffing or a restart
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= len(data):
                return False
            nxt = data[pos + 1]
            if nxt == 0x00 or nxt in STANDALONE or nxt == 0xFF:
                pos += 1 if nxt == 0xFF else 2
                continue
            break
    return False


def truncated(path: Path) -> bool:
    """True for a JPEG file that ends before its image does (other formats: False; their decoders fail)."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
        return not jpeg_complete(b"\xff\xd8" + f.read())
