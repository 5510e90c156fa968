"""A small AP Suite 6 ``.apt`` writer for tests (not part of liprobe).

It builds files byte by byte with :mod:`struct`, independently of
``liprobe.io.apt`` (which parses with numpy structured types), and lets a
test bend any header field to make a broken file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SECTION_HEADER = 148
BBOX = 24

_KIND_CODE = {"i": 1, "u": 2, "f": 3}


def _utf16_field(text: str, units: int) -> bytes:
    raw = text.encode("utf-16-le")
    if len(raw) > 2 * units:
        raise ValueError(f"{text!r} does not fit in {units} UTF-16 code units")
    return raw.ljust(2 * units, b"\x00")


@dataclass
class Section:
    """One section to write.

    ``values`` has shape (n,) or (n, k); its dtype decides the record data
    type, data type size and record size unless those are given. ``bbox``:
    ``"auto"`` writes the six-float bounding box for a section named
    ``Position`` (computed from ``values``) and none for others; a sequence
    of six numbers writes those; None writes none. The remaining fields
    override what would be written, to make broken files.
    """

    name: str
    values: np.ndarray
    unit: str = ""
    bbox: object = "auto"
    signature: bytes = b"SEC\x00"
    header_size: int | None = None
    header_version: int = 2
    section_version: int = 1
    relationship_type: int = 1
    record_type: int = 1
    data_type: int | None = None
    data_type_bits: int | None = None
    record_size: int | None = None
    record_count: int | None = None
    byte_count: int | None = None
    padding: bytes = b""

    def to_bytes(self) -> bytes:
        v = np.asarray(self.values)
        v2 = v.reshape(len(v), -1)
        little = v2.astype(v2.dtype.newbyteorder("<"))
        bbox = self.bbox
        if isinstance(bbox, str) and bbox == "auto":
            bbox = None
            if self.name == "Position":
                bbox = [f(v2[:, j]) for j in range(3) for f in (np.min, np.max)]
        extra = b"" if bbox is None else struct.pack("<6f", *bbox)
        header_size = (self.header_size if self.header_size is not None
                       else SECTION_HEADER + len(extra))
        data = little.tobytes() + self.padding
        head = b"".join([
            self.signature,
            struct.pack("<ii", header_size, self.header_version),
            _utf16_field(self.name, 32),
            struct.pack("<iIII", self.section_version, self.relationship_type,
                        self.record_type,
                        self.data_type if self.data_type is not None else _KIND_CODE[v.dtype.kind]),
            struct.pack("<ii",
                        (self.data_type_bits if self.data_type_bits is not None
                         else 8 * v.dtype.itemsize),
                        self.record_size if self.record_size is not None else little.strides[0]),
            _utf16_field(self.unit, 16),
            struct.pack("<QQ",
                        self.record_count if self.record_count is not None else len(v),
                        self.byte_count if self.byte_count is not None else len(data)),
        ])
        assert len(head) == SECTION_HEADER
        return head + extra + data


def apt_bytes(sections, ion_count: int | None = None, filename: str = "synthetic.apt",
              filetime: int = 0, signature: bytes = b"APT\x00", header_size: int = 540,
              header_version: int = 2) -> tuple[bytes, list[int]]:
    """The bytes of an ``.apt`` file, and the byte offset of each section header."""
    if ion_count is None:
        ion_count = len(sections[0].values) if sections else 0
    out = [signature, struct.pack("<ii", header_size, header_version),
           _utf16_field(filename, 256), struct.pack("<QQ", filetime, ion_count)]
    offsets = []
    pos = sum(len(b) for b in out)
    assert pos == 540
    for s in sections:
        offsets.append(pos)
        b = s.to_bytes()
        out.append(b)
        pos += len(b)
    return b"".join(out), offsets


def write_apt(path, sections, **kwargs) -> list[int]:
    """Write an ``.apt`` file (see :func:`apt_bytes`); the section header offsets."""
    data, offsets = apt_bytes(sections, **kwargs)
    Path(path).write_bytes(data)
    return offsets
