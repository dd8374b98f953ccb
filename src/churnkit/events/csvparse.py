"""Lines -> CSV records: vectorised for plain lines, Python's csv module only where quotes are.

Most log lines carry no quote character; they are split with Arrow string kernels (a
single-character delimiter, or runs of blanks for ``whitespace``), which is what keeps a
10-million-row file fast. A line that contains the quote character goes through
:mod:`csv` (C-implemented), which also joins a quoted field spanning several lines; such a
record keeps the number of the line where it starts. A quoted record still open at the end of a
block is carried into the next block; one open for more than ``max_record_lines`` lines (or at
end of file) makes its first line a malformed row and parsing resumes on the following line,
so a stray quote cannot swallow the rest of a file.

Why not DuckDB's or pyarrow's CSV reader (checked with DuckDB 2.0.1 and pyarrow 25, both
``all_varchar`` / string columns, explicit delimiter and quote, the sniffer off):

- the quarantine needs the line number and the raw text of *every* row, also of a well-formed
  row that a later value rule rejects; both readers give them only for the rows they reject
  themselves (DuckDB ``store_rejects`` -> ``reject_errors.line`` / ``csv_line``; pyarrow's
  ``invalid_row_handler`` -> ``number`` / ``text``, and ``number`` is None with threads);
- even for their own rejects the numbers are not lines: after a quoted field with a newline,
  DuckDB counts records (a bad line 8 is reported as 7), pyarrow counts rows without blank
  lines; DuckDB's ``csv_line`` for a line after a blank one starts with that blank line;
- an unterminated quote swallows the rest of the file in both (every later good row is lost
  into one reject); here it costs only its own line;
- ``strict_mode=false`` (DuckDB) drops the extra fields of a too-long row and accepts it, a
  silently changed row; pyarrow keeps `` "p" `` with its quotes where :mod:`csv` (with
  ``skipinitialspace``, as the tests require) reads ``p``;
- bytes that do not decode reject their own line here; both readers fail or replace them.

The line splitting (:mod:`lines`) and the vectorised split of unquoted lines cost about as
much as pyarrow's reader on the same lines (measured: 0.36 s vs 0.36-0.43 s per million
lines), so the hand path is kept whole rather than stitched to a library for no gain.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnkit.events.lines import LineBlock

WHITESPACE = "whitespace"
LIST_OF_STRINGS = pa.list_(pa.string())
MAX_RECORD_LINES = 1000


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    """One character, or ``whitespace`` (runs of spaces/tabs; leading/trailing blanks ignored)."""
    quote: str | None = '"'


@dataclass
class Records:
    """Tokenised records of one block, in line order; fields are not yet trimmed.

    The fields of all records lie in one flat array, record ``r``'s at ``values[starts[r] :
    starts[r] + counts[r]]``: a reader takes a column of the well-formed records with one
    gather (:meth:`column`) instead of reordering, filtering and unpacking a list array
    (measured: the CSV reader's CPU per 1M rows went from 1.46-1.64 s to 1.21-1.28 s)."""

    values: pa.StringArray
    starts: np.ndarray
    """Index in ``values`` of each record's first field."""
    counts: np.ndarray
    """Number of fields of each record."""
    line: np.ndarray
    """1-based line where each record starts."""
    lines: pa.StringArray
    """The block's lines: the raw text of a single-line record."""
    raw_ref: np.ndarray
    """Per record: its index in ``lines``, or ``-1 - k`` for ``multi_raw[k]``."""
    multi_raw: list[str] = field(default_factory=list)
    """Original text of records parsed by :mod:`csv` (lines joined with ``\\n``)."""
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    """(line, detail, raw) of records that could not be tokenised at all."""
    blank_lines: int = 0

    def column(self, j: int, rows: np.ndarray) -> pa.StringArray:
        """Field ``j`` of the given records (each has more than ``j`` fields)."""
        return self.values.take(pa.array(self.starts[rows] + j))

    def raw_of(self, rows: np.ndarray) -> list[str]:
        """Original text of the given records."""
        refs = self.raw_ref[rows]
        single = refs >= 0
        texts = self.lines.take(pa.array(refs[single])).to_pylist() if single.any() else []
        it = iter(texts)
        return [next(it) if r >= 0 else self.multi_raw[-1 - int(r)] for r in refs]

    @property
    def fields(self) -> pa.ListArray:
        """Each record's fields as a list (for inspection and tests; readers use :meth:`column`)."""
        offsets = np.zeros(len(self.counts) + 1, dtype=np.int32)
        np.cumsum(self.counts, out=offsets[1:])
        idx = np.repeat(self.starts - offsets[:-1], self.counts) + np.arange(offsets[-1])
        return pa.ListArray.from_arrays(pa.array(offsets), self.values.take(pa.array(idx, pa.int64())))


class _Feed:
    """Line iterator for :func:`csv.reader` that knows where a record started and stops at a cap."""

    def __init__(self, lines: _LazyLines, start: int, end: int, cap: int, whitespace: bool) -> None:
        self.lines, self.i, self.end, self.cap, self.whitespace = lines, start, end, cap, whitespace
        self.record_start = start
        self.exhausted = False
        self.capped = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.i >= self.end:
            self.exhausted = True
            raise StopIteration
        if self.i - self.record_start >= self.cap:
            self.exhausted = self.capped = True
            raise StopIteration
        line = self.lines[self.i]
        self.i += 1
        if self.whitespace:
            line = line.strip().replace("\t", " ")
        return line + "\n"


class RecordSplitter:
    """Turns successive :class:`LineBlock` s of one file into :class:`Records`."""

    def __init__(self, dialect: Dialect, max_record_lines: int = MAX_RECORD_LINES) -> None:
        self.dialect = dialect
        self.cap = max_record_lines
        self._carry: LineBlock | None = None
        ws = dialect.delimiter == WHITESPACE
        self._csv_kwargs = {
            "delimiter": " " if ws else dialect.delimiter,
            "quotechar": dialect.quote or '"',
            "quoting": csv.QUOTE_MINIMAL if dialect.quote else csv.QUOTE_NONE,
            "skipinitialspace": True,
            "strict": False,
        }

    def feed(self, block: LineBlock) -> Records:
        if self._carry is not None:
            carry = self._carry
            shift = len(carry.lines)
            undecodable = dict(carry.undecodable)
            undecodable.update({i + shift: d for i, d in block.undecodable.items()})
            block = LineBlock(
                pa.concat_arrays([carry.lines, block.lines]),
                carry.first_line,
                undecodable,
                block.final,
                block.bytes_done,
            )
            self._carry = None
        records, consumed = self._split(block)
        if consumed < len(block.lines):
            self._carry = LineBlock(
                block.lines.slice(consumed),
                block.first_line + consumed,
                {i - consumed: d for i, d in block.undecodable.items() if i >= consumed},
                False,
                block.bytes_done,
            )
        return records

    # ----------------------------------------------------------------------------------------

    def _split(self, block: LineBlock) -> tuple[Records, int]:
        lines, final = block.lines, block.final
        n = len(lines)
        ws = self.dialect.delimiter == WHITESPACE
        blank = _blank(lines)
        flagged = np.zeros(n, dtype=bool)
        if block.undecodable:
            flagged[list(block.undecodable)] = True
        quote = self.dialect.quote
        hasq = _has_char(lines, quote) if quote else np.zeros(n, dtype=bool)
        consumed = np.zeros(n, dtype=bool)
        stop_at = n
        py_idx: list[int] = []
        py_fields: list[list[str]] = []
        py_raw: list[str] = []
        errors: list[tuple[int, str, str]] = []  # (index, detail, raw)

        qpos = np.flatnonzero(hasq)
        if len(qpos):
            pylines = _LazyLines(lines, qpos)  # only quoted records and their lines become Python text
            single: list[int] = []  # lines consumed by one-line records, marked after the loop
            pos = 0
            qi = 0
            stop = False
            while qi < len(qpos) and not stop:
                s = int(qpos[qi])
                if s < pos:
                    qi = int(np.searchsorted(qpos, pos))
                    continue
                feed = _Feed(pylines, s, n, self.cap, ws)
                reader = csv.reader(feed, **self._csv_kwargs)  # type: ignore[arg-type]
                while True:
                    start = feed.i
                    feed.record_start = start
                    try:
                        rec = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as err:
                        end = max(feed.i, start + 1)
                        errors.append(
                            (
                                start,
                                f"cannot parse CSV record: {err}",
                                "\n".join(pylines[start:end]),
                            )
                        )
                        consumed[start:end] = True
                        pos = end
                        break
                    if feed.exhausted:
                        if feed.capped or final:
                            limit = "end of file" if not feed.capped else f"{self.cap} lines"
                            errors.append(
                                (
                                    start,
                                    f"unterminated quoted field (no closing {quote} before {limit})",
                                    pylines[start],
                                )
                            )
                            consumed[start] = True
                            pos = start + 1
                        else:
                            stop_at = start  # the record continues in the next block
                            stop = True
                        break
                    end = feed.i
                    if end == start + 1:  # the common case, without numpy slices or joins
                        single.append(start)
                        raw = pylines[start]
                    else:
                        consumed[start:end] = True
                        raw = "\n".join(pylines[start:end])
                    bad = next((i for i in range(start, end) if i in block.undecodable), None)
                    if bad is not None:
                        errors.append((start, block.undecodable[bad], raw))
                    else:
                        py_idx.append(start)
                        py_fields.append(rec)
                        py_raw.append(raw)
                    pos = end
                    if end >= n or not hasq[end]:
                        break
                qi = int(np.searchsorted(qpos, pos))
            consumed[np.asarray(single, dtype=np.int64)] = True

        before = np.arange(n) < stop_at
        free = before & ~consumed
        blank_lines = int(np.count_nonzero(free & blank & ~flagged))
        for i in np.flatnonzero(free & flagged):
            errors.append((int(i), block.undecodable[int(i)], lines[int(i)].as_py()))
        vidx = np.flatnonzero(free & ~blank & ~flagged & ~hasq)
        # Every line is split (no copy of the chosen ones first); only vidx's lists are used.
        if ws:
            split = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(lines))
        else:
            split = pc.split_pattern(lines, self.dialect.delimiter)
        offsets = np.asarray(split.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        values = split.values
        starts = offsets[vidx]
        counts = offsets[vidx + 1] - offsets[vidx]
        first = block.first_line
        line, raw_ref = vidx.astype(np.int64), vidx.astype(np.int64)
        if py_idx:
            py_counts = np.array([len(f) for f in py_fields], dtype=np.int64)
            py_starts = len(values) + np.concatenate([[0], np.cumsum(py_counts)[:-1]]).astype(np.int64)
            values = pa.concat_arrays(
                [values, pa.array([v for f in py_fields for v in f], pa.string())]
            )
            all_idx = np.concatenate([vidx, np.asarray(py_idx, dtype=np.int64)])
            order = np.argsort(all_idx, kind="stable")
            line = all_idx[order]
            starts = np.concatenate([starts, py_starts])[order]
            counts = np.concatenate([counts, py_counts])[order]
            raw_ref = np.concatenate([raw_ref, -1 - np.arange(len(py_idx), dtype=np.int64)])[order]
        errors.sort(key=lambda e: e[0])
        return (
            Records(
                values=values,
                starts=starts,
                counts=counts,
                line=line + first,
                lines=lines,
                raw_ref=raw_ref,
                multi_raw=py_raw,
                errors=[(i + first, d, r) for i, d, r in errors],
                blank_lines=blank_lines,
            ),
            stop_at,
        )


class _LazyLines:
    """``lines[i]`` (and slices) as Python text, converted on first use: the csv module sees
    only the lines with a quote and those a quoted record spans, about 1% of a typical log."""

    def __init__(self, lines: pa.StringArray, first: np.ndarray | None = None) -> None:
        self._lines = lines
        self._cache: dict[int, str] = {}
        if first is not None and len(first):  # the lines surely needed, converted in one call
            self._cache = dict(zip(first.tolist(), lines.take(pa.array(first)).to_pylist()))

    def __getitem__(self, key: int | slice) -> str | list[str]:
        if isinstance(key, slice):
            return [self[i] for i in range(*key.indices(len(self._lines)))]
        text = self._cache.get(key)
        if text is None:
            text = self._cache[key] = self._lines[key].as_py()
        return text


def _blank(lines: pa.StringArray) -> np.ndarray:
    """Whether each line is empty or only whitespace. A line starting with a visible ASCII
    character is not; only the others (rare) are trimmed by Arrow to find out."""
    n = len(lines)
    if n == 0 or lines.buffers()[2] is None:
        return np.ones(n, dtype=bool) if n else np.zeros(0, dtype=bool)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + n + 1]
    data = np.frombuffer(lines.buffers()[2], dtype=np.uint8)
    empty = offsets[1:] == offsets[:-1]
    lead = data[np.minimum(offsets[:-1], len(data) - 1)]
    unsure = np.flatnonzero(~empty & ((lead <= 0x20) | (lead >= 0x7F)))
    blank = empty
    if len(unsure):
        trimmed = pc.utf8_trim_whitespace(lines.take(pa.array(unsure)))
        blank[unsure] = _np_bool(pc.equal(trimmed, ""))
    return blank


def _has_char(lines: pa.StringArray, char: str) -> np.ndarray:
    """Whether each line contains ``char``: an ASCII character is found in the raw bytes with
    numpy (a tenth of Arrow's ``count_substring`` time), any other with Arrow."""
    n = len(lines)
    if ord(char) >= 128 or n == 0 or lines.buffers()[2] is None:
        return _np_bool(pc.match_substring(lines, char))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + n + 1]
    data = np.frombuffer(lines.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    hits = np.flatnonzero(data == ord(char)) + offsets[0]
    out = np.zeros(n, dtype=bool)
    out[np.searchsorted(offsets, hits, side="right") - 1] = True
    return out


def _np_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_header_line(text: str, dialect: Dialect) -> list[str]:
    """Column names from one header line (quotes honoured), stripped of padding."""
    if dialect.delimiter == WHITESPACE:
        text = text.strip().replace("\t", " ")
        kwargs = {"delimiter": " ", "skipinitialspace": True}
    else:
        kwargs = {"delimiter": dialect.delimiter, "skipinitialspace": True}
    if dialect.quote:
        kwargs["quotechar"] = dialect.quote
    else:
        kwargs["quoting"] = csv.QUOTE_NONE
    row = next(csv.reader([text], **kwargs), [])  # type: ignore[call-overload]
    return [c.strip() for c in row]
