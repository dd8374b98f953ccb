"""Blockwise line splitting for text logs, with exact 1-based line numbers and bounded memory.

A file is read in byte blocks; each block is cut at its last newline and turned into an Arrow
string array of lines in one vectorised step (newline positions found with numpy). LF and
CRLF both end a line. Bytes that do not decode in the declared encoding flag their line
(it becomes a ``malformed_row``) instead of failing the file.
"""

from __future__ import annotations

import codecs
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

READ_BYTES = 8 << 20
UTF8_BOM = codecs.BOM_UTF8


@dataclass
class LineBlock:
    lines: pa.StringArray
    """Decoded lines without their terminator; undecodable ones hold a lossy rendering."""
    first_line: int
    """1-based number of ``lines[0]`` in the file."""
    undecodable: dict[int, str]
    """Index in ``lines`` -> what was wrong with its bytes."""
    final: bool
    """True for the last block of the file."""
    bytes_done: int
    """Compressed bytes of the file consumed so far (for progress)."""


def _is_ascii_compatible(encoding: str) -> bool:
    try:
        return '\n,;|\t "az09'.encode(encoding) == b'\n,;|\t "az09'
    except (LookupError, UnicodeError):
        return False


def _normal_encoding(encoding: str) -> str:
    return codecs.lookup(encoding).name


class _Raw:
    """A binary stream over a plain or gzip file that can say how far into the file it is."""

    def __init__(self, path: Path, compressed: bool) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.stream: BinaryIO = gzip.GzipFile(fileobj=self._file) if compressed else self._file  # type: ignore[assignment]

    def position(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        if self.stream is not self._file:
            self.stream.close()
        self._file.close()


def _split(data: bytes, encoding: str) -> tuple[pa.StringArray, dict[int, str]]:
    """Lines of ``data`` (which ends at a line end or EOF), decoded, terminators removed."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(data) and (len(ends) == 0 or ends[-1] != len(data) - 1):
        ends = np.append(ends, len(data))  # last line without a newline
    n = len(ends)
    starts = np.empty(n, dtype=np.int64)
    if n:
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    if encoding == "utf-8" and b"\r" not in data:
        text = _without_newlines(buf, starts)
        if text is not None:
            return text, {}
    # Arrow binary layout needs contiguous offsets: line i is data[off[i]:off[i+1]], which
    # includes its newline; the terminator is trimmed after decoding.
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:n] = starts
    offsets[n] = len(data)
    binary = pa.Array.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    undecodable: dict[int, str] = {}
    if encoding == "utf-8":
        try:
            text = binary.cast(pa.large_string())
        except pa.ArrowInvalid:
            text, undecodable = _decode_lines(binary.to_pylist(), encoding)
    else:
        text, undecodable = _decode_lines(binary.to_pylist(), encoding)
    text = pc.utf8_rtrim(text, characters="\r\n")
    return text.cast(pa.string()), undecodable


def _without_newlines(buf: np.ndarray, starts: np.ndarray) -> pa.StringArray | None:
    """UTF-8 lines with LF endings only: the bytes without their newlines, so no trim pass is
    needed (line i starts i newlines earlier); None when some bytes do not decode."""
    body = buf[buf != 10]
    if len(body) >= 2**31:
        return None
    n = len(starts)
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[:n] = starts - np.arange(n)
    offsets[n] = len(body)
    binary = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(body)]
    )
    try:
        return binary.cast(pa.string())
    except pa.ArrowInvalid:
        return None


def _decode_lines(raw_lines: list[bytes], encoding: str) -> tuple[pa.Array, dict[int, str]]:
    """Slow path (only for blocks with bad bytes or a non-UTF-8 encoding): line by line."""
    out: list[str] = []
    bad: dict[int, str] = {}
    for i, raw in enumerate(raw_lines):
        try:
            out.append(raw.decode(encoding))
        except UnicodeDecodeError as err:
            bad[i] = (
                f"undecodable bytes for encoding {encoding}: byte 0x{raw[err.start]:02x}"
                f" at position {err.start + 1}"
            )
            out.append(raw.decode(encoding, errors="backslashreplace"))
    return pa.array(out, type=pa.large_string()), bad


def iter_line_blocks(
    path: Path, encoding: str, block_lines: int, *, compressed: bool = False
) -> Iterator[LineBlock]:
    """Yield blocks of at most ``block_lines`` lines; only about one block is held at a time."""
    encoding = _normal_encoding(encoding)
    if not _is_ascii_compatible(encoding):
        yield from _iter_wide_encoding(path, encoding, block_lines, compressed)
        return
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    raw = _Raw(path, compressed)
    try:
        parts: list[bytes] = []
        newlines = 0
        line_no = 1
        first = True
        while True:
            data = raw.stream.read(READ_BYTES)
            eof = not data
            if first and data:
                if encoding == "utf-8" and data.startswith(UTF8_BOM):
                    data = data[len(UTF8_BOM) :]
                first = False
            if data:
                parts.append(data)
                newlines += data.count(b"\n")
            if newlines < block_lines and not eof:
                continue  # join only when a whole block is there: no quadratic copying
            pending = b"".join(parts)
            cuts = _cut_points(pending, eof, block_lines)
            start = 0
            for k, cut in enumerate(cuts):
                lines, bad = _split(pending[start:cut], encoding)
                final = eof and k == len(cuts) - 1
                yield LineBlock(lines, line_no, bad, final, raw.position())
                line_no += len(lines)
                start = cut
            if eof:
                if not cuts:
                    yield LineBlock(pa.array([], pa.string()), line_no, {}, True, raw.position())
                return
            rest = pending[start:]
            parts = [rest] if rest else []
            newlines = rest.count(b"\n")
    finally:
        raw.close()


def _cut_points(data: bytes, eof: bool, block_lines: int) -> list[int]:
    """Byte offsets where blocks of ``block_lines`` lines end (at EOF the last takes the rest)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    cuts = [int(ends[i]) + 1 for i in range(block_lines - 1, len(ends), block_lines)]
    if eof and (cuts[-1] if cuts else 0) < len(data):
        cuts.append(len(data))
    return cuts


def _iter_wide_encoding(
    path: Path, encoding: str, block_lines: int, compressed: bool
) -> Iterator[LineBlock]:
    """UTF-16/32 and similar: decode as a text stream, then split the UTF-8 re-encoding."""
    raw = _Raw(path, compressed)
    try:
        text = io.TextIOWrapper(raw.stream, encoding=encoding, newline="")  # type: ignore[arg-type]
        line_no = 1
        batch: list[str] = []
        for line in text:  # newline="" keeps "\r\n" as one terminator
            batch.append(line)
            if len(batch) == block_lines:
                lines, _ = _split("".join(batch).encode("utf-8"), "utf-8")
                yield LineBlock(
                    lines=lines,
                    first_line=line_no,
                    undecodable={},
                    final=False,
                    bytes_done=raw.position(),
                )
                line_no += len(lines)
                batch = []
        lines, _ = _split("".join(batch).encode("utf-8"), "utf-8")
        yield LineBlock(
            lines=lines, first_line=line_no, undecodable={}, final=True, bytes_done=raw.position()
        )
    finally:
        raw.close()
