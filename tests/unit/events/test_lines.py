"""Line splitting: exact line numbers, CRLF/LF, BOM, bad bytes, blocks, other encodings."""

from __future__ import annotations

import gzip

from churnkit.events.lines import iter_line_blocks


def collect(path, encoding="utf-8", block_lines=1000, compressed=False):
    lines, numbers, bad = [], [], {}
    blocks = list(iter_line_blocks(path, encoding, block_lines, compressed=compressed))
    for b in blocks:
        for i, text in enumerate(b.lines.to_pylist()):
            lines.append(text)
            numbers.append(b.first_line + i)
        bad.update({b.first_line + i: d for i, d in b.undecodable.items()})
    assert blocks[-1].final and not any(b.final for b in blocks[:-1])
    return lines, numbers, bad


def test_crlf_lf_and_missing_final_newline(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"h1,h2\r\na,b\n\r\nc,d\r\nlast")
    lines, numbers, bad = collect(p)
    assert lines == ["h1,h2", "a,b", "", "c,d", "last"]
    assert numbers == [1, 2, 3, 4, 5]
    assert bad == {}


def test_utf8_bom_is_dropped(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"\xef\xbb\xbfuser_id,ts\nu1,x\n")
    lines, _, _ = collect(p)
    assert lines[0] == "user_id,ts"


def test_undecodable_line_is_flagged_with_its_number_and_byte(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"ok\ncaf\xff\nok\n")
    lines, _, bad = collect(p)
    assert list(bad) == [2]
    assert "0xff" in bad[2] and "position 4" in bad[2]
    assert lines[0] == "ok" and lines[2] == "ok"


def test_small_blocks_keep_numbering(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("".join(f"line{i}\n" for i in range(1, 2502)))
    lines, numbers, _ = collect(p, block_lines=1000)
    assert numbers == list(range(1, 2502))
    assert all(text == f"line{n}" for text, n in zip(lines, numbers))


def test_latin1_and_utf16_and_gzip(tmp_path):
    p = tmp_path / "l1.csv"
    p.write_bytes("name\r\ncafé\r\n".encode("latin-1"))
    assert collect(p, encoding="latin-1")[0] == ["name", "café"]
    p = tmp_path / "u16.csv"
    p.write_bytes("name\r\ncafé\r\n".encode("utf-16"))
    assert collect(p, encoding="utf-16")[0] == ["name", "café"]
    p = tmp_path / "a.csv.gz"
    p.write_bytes(gzip.compress(b"name\ncafe\n"))
    assert collect(p, compressed=True)[0] == ["name", "cafe"]


def test_empty_file_yields_one_empty_final_block(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    assert collect(p) == ([], [], {})
