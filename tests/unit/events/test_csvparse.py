"""Record splitting: delimiters, whitespace, quotes, multi-line records across blocks."""

from __future__ import annotations

import pyarrow as pa
import pytest

from churnkit.events.csvparse import Dialect, RecordSplitter, parse_header_line
from churnkit.events.lines import LineBlock


def split(lines: list[str], dialect: Dialect, block: int | None = None, **kw):
    """Feed ``lines`` in blocks of ``block`` lines; return (fields, line numbers, errors, blanks)."""
    block = block or len(lines) or 1
    splitter = RecordSplitter(dialect, **kw)
    fields, numbers, errors, blanks = [], [], [], 0
    starts = list(range(0, len(lines), block)) or [0]
    for k, s in enumerate(starts):
        chunk = lines[s : s + block]
        recs = splitter.feed(
            LineBlock(pa.array(chunk, pa.string()), s + 1, {}, k == len(starts) - 1, 0)
        )
        fields += recs.fields.to_pylist()
        numbers += recs.line.tolist()
        errors += recs.errors
        blanks += recs.blank_lines
    return fields, numbers, errors, blanks


@pytest.mark.parametrize("delim", [",", ";", "|", "\t"])
def test_single_char_delimiters(delim):
    lines = [f"a{delim}b{delim}c", f" 1 {delim} 2{delim}3 ", f"x{delim}{delim}z"]
    fields, numbers, errors, _ = split(lines, Dialect(delim))
    assert fields == [["a", "b", "c"], [" 1 ", " 2", "3 "], ["x", "", "z"]]
    assert numbers == [1, 2, 3] and errors == []


def test_whitespace_delimiter_ignores_padding_and_runs():
    lines = [
        " customer_id  date number_of_cds  dollar_value",
        " 00001 19970101  1   11.77",
        "\t7\t\t8  9 10  ",
    ]
    fields, _, _, _ = split(lines, Dialect("whitespace"))
    assert fields[1] == ["00001", "19970101", "1", "11.77"]
    assert fields[2] == ["7", "8", "9", "10"]


def test_blank_lines_are_counted_not_records():
    fields, numbers, _, blanks = split(["a,b", "", "   ", "c,d"], Dialect(","))
    assert numbers == [1, 4] and blanks == 2 and len(fields) == 2


def test_quoted_fields_with_delimiters_and_escaped_quotes():
    lines = ['1,"a, b",x', '2,"say ""hi""",y', '3, "padded" ,z']
    fields, numbers, _, _ = split(lines, Dialect(","))
    assert fields[0] == ["1", "a, b", "x"]
    assert fields[1] == ["2", 'say "hi"', "y"]
    assert [f.strip() for f in fields[2]] == ["3", "padded", "z"]
    assert numbers == [1, 2, 3]


def test_multiline_record_keeps_start_line_even_across_blocks():
    lines = ["a,b", '1,"two', "lines", 'here",x', "2,y"]
    for block in (1, 2, 5):
        fields, numbers, errors, _ = split(lines, Dialect(","), block=block)
        assert fields == [["a", "b"], ["1", "two\nlines\nhere", "x"], ["2", "y"]], block
        assert numbers == [1, 2, 5]
        assert errors == []


def test_unterminated_quote_rejects_only_its_line():
    lines = ["1,a", '2,"open', "3,b", "4,c"]
    _fields, numbers, errors, _ = split(lines, Dialect(","), block=2)
    assert numbers == [1, 3, 4]
    assert [e[0] for e in errors] == [2] and "unterminated" in errors[0][1]


def test_runaway_quote_is_capped():
    lines = ['1,"open'] + [f"{i},x" for i in range(2, 30)]
    _fields, numbers, errors, _ = split(lines, Dialect(","), max_record_lines=5)
    assert [e[0] for e in errors] == [1] and "5 lines" in errors[0][1]
    assert numbers == list(range(2, 30))


def test_quote_none_treats_quotes_as_text():
    fields, _, _, _ = split(['1,"a,b"'], Dialect(",", quote=None))
    assert fields == [["1", '"a', 'b"']]


def test_parse_header_line():
    assert parse_header_line(" user_id , ts ,event", Dialect(",")) == ["user_id", "ts", "event"]
    assert parse_header_line("  a   b\tc ", Dialect("whitespace")) == ["a", "b", "c"]
    assert parse_header_line('"x,y",z', Dialect(",")) == ["x,y", "z"]


def test_lines_with_the_quote_are_found_in_sliced_empty_and_non_ascii_text():
    from churnkit.events.csvparse import _has_char

    lines = pa.array(["", 'a,"b"', "plain", "é,\"", "", "x\""], pa.string())
    assert _has_char(lines, '"').tolist() == [False, True, False, True, False, True]
    assert _has_char(lines.slice(2, 3), '"').tolist() == [False, True, False]  # a carried block
    assert _has_char(pa.array(["", ""], pa.string()), '"').tolist() == [False, False]
    assert _has_char(pa.array(["«a»,b", "c"], pa.string()), "«").tolist() == [True, False]


def test_a_non_ascii_quote_character_quotes_fields():
    fields, numbers, errors, _ = split(["1,§a, b§,x", "2,plain,y"], Dialect(",", quote="§"))
    assert errors == [] and numbers == [1, 2]
    assert fields == [["1", "a, b", "x"], ["2", "plain", "y"]]
