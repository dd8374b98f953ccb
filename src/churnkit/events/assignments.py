"""The campaign assignments table (exposures): which user got which variant of which campaign,
and when; validated like events and the users table.

Rows are quarantined (``table = 'assignments'``) for the first rule they fail, in this order:
``malformed_row``, ``missing_user_id``, ``missing_campaign_id``, ``missing_variant``,
``bad_timestamp`` (``assigned_ts`` empty or unreadable), ``timestamp_out_of_range`` (before
``ingest.min_ts`` or at/after the as-of), ``bad_horizon`` (``horizon_days`` given but not a
positive whole number of days), ``bad_control`` (``control_column`` empty or not true/false),
``text_too_long`` (an id or variant over :data:`~churnkit.contracts.MAX_TEXT_CHARS`).

A user has one assignment per campaign. The same (user_id, campaign_id) again with identical
values is a duplicate (dropped, counted); with a different variant, time, horizon or control
flag the later row is rejected as ``conflicting_assignment`` (the first row, by line, is kept)
and the detail names the columns that differ.

Control is declared by the source, never guessed: with ``control_column`` every kept row of a
campaign must agree on which one variant is the control. A campaign where they do not (one
variant flagged both true and false, or two variants flagged control) cannot be evaluated
without guessing, so *all* its rows are rejected as ``conflicting_control``, the detail
saying how the flags disagree; the other campaigns are stored. ``read = accepted +
duplicates + rejected`` holds here too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnkit.config import AssignmentsTableSource, LookupTable
from churnkit.contracts import ASSIGNMENT_COLUMNS, ASSIGNMENTS_ARROW_SCHEMA, MAX_TEXT_CHARS, UTC_US
from churnkit.errors import InputFileError
from churnkit.events.files import InputFile, infer_format
from churnkit.events.mapping import field_values, text_field
from churnkit.events.readers import ParquetReader, RawChunk, open_reader
from churnkit.events.schema import (
    BAD_CONTROL,
    BAD_HORIZON,
    BAD_TIMESTAMP,
    CONFLICTING_ASSIGNMENT,
    CONFLICTING_CONTROL,
    MISSING_CAMPAIGN_ID,
    MISSING_USER_ID,
    MISSING_VARIANT,
    TEXT_TOO_LONG,
    TIMESTAMP_OUT_OF_RANGE,
)
from churnkit.events.store import _sql_path, one, run
from churnkit.events.tables import StagedTable, quote_ident
from churnkit.events.timestamps import parse_timestamps
from churnkit.events.validate import describe_spec, iso_utc
from churnkit.events.values import as_text, column, np_bool, parse_numbers

TRUE_TEXTS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_TEXTS = ("false", "f", "no", "n", "0", "0.0")
"""How a ``control_column`` may say true and false (case-insensitive)."""
MAX_HORIZON_DAYS = 2**31 - 1

ROW_REASONS: tuple[str, ...] = (
    MISSING_USER_ID,
    MISSING_CAMPAIGN_ID,
    MISSING_VARIANT,
    BAD_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    BAD_HORIZON,
    BAD_CONTROL,
    TEXT_TOO_LONG,
)
"""Per-row checks in order; reason for code ``k`` is ``ROW_REASONS[k - 1]``."""


def assignments_required_columns(spec: AssignmentsTableSource) -> dict[str, str]:
    """Every column the mapping reads from the assignments file -> the key that needs it (for
    error messages); columns a ``lookup`` table supplies are its to have."""
    out: dict[str, str] = {}
    for name in ("user_id", "campaign_id", "variant", "assigned_ts"):
        field_spec = getattr(spec, name)
        for col in ([] if field_spec.optional else field_spec.source_columns()) + field_spec.condition_columns():
            out.setdefault(col, f"assignments.{name}")
    for name in ("horizon_days", "control_column"):
        col = getattr(spec, name)
        if col is not None:
            out.setdefault(col, f"assignments.{name}")
    if spec.lookup is not None:
        for col in spec.lookup.columns:
            out.pop(col, None)
        out.setdefault(spec.lookup.key, "assignments.lookup.key")
    return out


def lookup_required_columns(lookup: LookupTable) -> dict[str, str]:
    """The lookup table's columns -> the key that needs them."""
    return {lookup.key: "assignments.lookup.key", **dict.fromkeys(lookup.columns, "assignments.lookup.columns")}


def read_lookup(lookup: LookupTable, chunk_rows: int = 100_000) -> tuple[pa.Array, dict[str, pa.Array]]:
    """The lookup table as (its keys, its columns) in text, one row per key: a key twice is an
    error (which row's values would an assignment take?)."""
    fmt, compressed = infer_format(lookup.path, lookup.format)
    reader = open_reader(InputFile(lookup.path, fmt, 0, compressed), lookup.csv, chunk_rows)
    reader.check_columns(lookup_required_columns(lookup))
    parts: dict[str, list[pa.Array]] = {c: [] for c in (lookup.key, *lookup.columns)}
    for chunk in reader.chunks():
        if chunk.malformed:
            line, why, _ = chunk.malformed[0]
            raise InputFileError(f"{lookup.path}: line {line} of the assignments lookup table: {why}")
        for c, arrays in parts.items():
            arrays.append(as_text(chunk.columns[c], chunk.text_clean))
    if isinstance(reader, ParquetReader):
        reader.close()
    cols = {c: pa.concat_arrays(v) if v else pa.array([], pa.string()) for c, v in parts.items()}
    keys = cols.pop(lookup.key)
    counts = pc.value_counts(keys.drop_null())
    twice = [v["values"] for v in counts.to_pylist() if v["counts"] > 1]
    if twice:
        raise InputFileError(f"{lookup.path}: {lookup.key} {twice[0]!r} appears on more than one row of the "
                             f"assignments lookup table; each key needs one row")
    return keys, cols


def control_declared(spec: AssignmentsTableSource) -> str | None:
    """How the source says which variant is control, in words (None: it does not)."""
    if spec.control is not None:
        return f"variant {spec.control!r}"
    if spec.control_column is not None:
        return f"column {spec.control_column!r}"
    return None


class AssignmentsTable(StagedTable):
    """Streams one assignments file into a staging folder, then resolves repeats in DuckDB."""

    name = "assignments"

    def _prepare(self) -> None:
        self.schema = ASSIGNMENTS_ARROW_SCHEMA
        self._lookup = read_lookup(self.spec.lookup) if self.spec.lookup is not None else None

    def _with_lookup(self, cols: dict[str, pa.Array], clean: bool) -> dict[str, pa.Array]:
        """The chunk's columns and the lookup table's, matched on its key (null where the key
        is not in the lookup table: the field reading it then says it is empty)."""
        if self._lookup is None:
            return cols
        keys, extra = self._lookup
        at = pc.index_in(as_text(cols[self.spec.lookup.key], clean), value_set=keys)
        return {**cols, **{c: arr.take(at) for c, arr in extra.items()}}

    def _chunk(
        self,
        chunk: RawChunk,
        lines: list[int],
        reasons: list[str],
        details: list[str],
        raws: list[str],
    ) -> None:
        n, clean, spec = chunk.n, chunk.text_clean, self.spec
        cols = self._with_lookup(chunk.columns, clean)
        texts = {
            "user_id": text_field(cols, spec.user_id, n, clean, is_id=True),
            "campaign_id": text_field(cols, spec.campaign_id, n, clean),
            "variant": text_field(cols, spec.variant, n, clean),
        }
        missing = {name: ~np_bool(pc.is_valid(arr)) for name, arr in texts.items()}
        raw_ts = field_values(cols, spec.assigned_ts, n, clean)
        ts = parse_timestamps(raw_ts, spec.assigned_ts.formats, spec.assigned_ts.timezone)
        out_of_range = ts.ok & ((ts.us < self.min_us) | (ts.us >= self.as_of_us))

        horizon = np.zeros(n, dtype=np.int64)
        horizon_null = np.ones(n, dtype=bool)
        bad_horizon = np.zeros(n, dtype=bool)
        horizon_raw: pa.Array | None = None
        if spec.horizon_days is not None:
            horizon_raw = column(cols, spec.horizon_days, n)
            nums = parse_numbers(horizon_raw, "horizon_days", clean)
            v = nums.values
            with np.errstate(invalid="ignore"):
                whole = np.isfinite(v) & (v >= 1) & (v <= MAX_HORIZON_DAYS) & (np.floor(v) == v)
            horizon_null = nums.null
            bad_horizon = ~nums.null & ~whole
            horizon = np.where(whole, v, 0).astype(np.int64)

        is_control, control_null, bad_control, flag_text = self._control(cols, texts["variant"], n, clean)

        too_long = np.zeros(n, dtype=bool)
        for arr in texts.values():
            too_long |= np_bool(pc.fill_null(pc.greater(pc.utf8_length(arr), MAX_TEXT_CHARS), False))

        codes = np.select(
            [
                missing["user_id"],
                missing["campaign_id"],
                missing["variant"],
                ~ts.ok,
                out_of_range,
                bad_horizon,
                bad_control,
                too_long,
            ],
            list(range(1, len(ROW_REASONS) + 1)),
            0,
        )
        bad = np.flatnonzero(codes)
        if len(bad):
            lines.extend(int(x) for x in chunk.line[bad])
            raws.extend(chunk.raw_of(bad))
            reasons.extend(ROW_REASONS[int(codes[i]) - 1] for i in bad)
            details.extend(self._explain(bad, codes, texts, raw_ts, ts.us, horizon_raw, flag_text))
            for code, count in enumerate(np.bincount(codes, minlength=len(ROW_REASONS) + 1)[1:], start=1):
                self.result.reject(ROW_REASONS[code - 1], int(count))
        ok = codes == 0
        if not ok.any():
            return
        mask = pa.array(ok)
        table = pa.table(
            {
                **{name: arr.filter(mask) for name, arr in texts.items()},
                "assigned_ts": pa.array(ts.us[ok], pa.int64()).cast(UTC_US),
                "horizon_days": pa.array(horizon[ok], pa.int64(), mask=horizon_null[ok]).cast(pa.int32()),
                "is_control": pa.array(is_control[ok], pa.bool_(), mask=control_null[ok]),
                "design": pa.nulls(int(ok.sum()), pa.string()) if spec.design is None
                else pa.array([spec.design] * int(ok.sum()), pa.string()),
            },
            schema=self.schema,
        )
        self._stage(table, chunk, ok)

    def _control(
        self, cols: dict[str, pa.Array], variant: pa.Array, n: int, clean: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array | None]:
        """(is_control, null, bad, the flag's text) per row, as the source declares control."""
        spec = self.spec
        nothing = np.zeros(n, dtype=bool)
        if spec.control is not None:
            return np_bool(pc.equal(variant, spec.control)), nothing, nothing, None
        if spec.control_column is None:
            return nothing, np.ones(n, dtype=bool), nothing, None
        text = as_text(column(cols, spec.control_column, n), clean)
        lower = pc.utf8_lower(text)
        yes = np_bool(pc.is_in(lower, value_set=pa.array(TRUE_TEXTS)))
        no = np_bool(pc.is_in(lower, value_set=pa.array(FALSE_TEXTS)))
        return yes, nothing, ~yes & ~no, text

    def _explain(
        self,
        bad: np.ndarray,
        codes: np.ndarray,
        texts: dict[str, pa.Array],
        raw_ts: pa.Array,
        us: np.ndarray,
        horizon_raw: pa.Array | None,
        flag_text: pa.Array | None,
    ) -> list[str]:
        spec = self.spec
        take = pa.array(bad, pa.int64())
        ts_texts = raw_ts.take(take).cast(pa.string()).to_pylist()
        horizons = horizon_raw.take(take).to_pylist() if horizon_raw is not None else []
        flags = flag_text.take(take).to_pylist() if flag_text is not None else []
        long_texts = {name: arr.take(take).to_pylist() for name, arr in texts.items()}
        out = []
        for k, i in enumerate(bad):
            reason = ROW_REASONS[int(codes[i]) - 1]
            if reason == MISSING_USER_ID:
                out.append(f"user_id is empty ({describe_spec(spec.user_id)})")
            elif reason == MISSING_CAMPAIGN_ID:
                out.append(f"campaign_id is empty ({describe_spec(spec.campaign_id)})")
            elif reason == MISSING_VARIANT:
                out.append(f"variant is empty ({describe_spec(spec.variant)})")
            elif reason == BAD_TIMESTAMP:
                text = ts_texts[k]
                out.append(
                    "assigned_ts is empty"
                    if text is None
                    else f"assigned_ts {text!r} matches none of {list(spec.assigned_ts.formats)}"
                )
            elif reason == TIMESTAMP_OUT_OF_RANGE:
                when = int(us[i])
                out.append(
                    f"assigned_ts {iso_utc(when)} is before min_ts {iso_utc(self.min_us)}"
                    if when < self.min_us
                    else f"assigned_ts {iso_utc(when)} is at or after as_of {iso_utc(self.as_of_us)}"
                )
            elif reason == BAD_HORIZON:
                out.append(
                    f"horizon_days {horizons[k]!r} (column '{spec.horizon_days}') is not a positive whole number of days"
                )
            elif reason == BAD_CONTROL:
                flag = flags[k]
                out.append(
                    f"control column '{spec.control_column}' is empty"
                    if flag is None
                    else f"control column '{spec.control_column}' {flag!r} is not true or false"
                )
            else:
                name = next(
                    c for c, vals in long_texts.items() if vals[k] is not None and len(vals[k]) > MAX_TEXT_CHARS
                )
                out.append(f"{name} has {len(long_texts[name][k]):,} characters; the limit is {MAX_TEXT_CHARS}")
        return out

    def finalize(self, out_path: Path, events_glob: str | None) -> dict:
        """Resolve repeats and control flags, write the assignments Parquet to ``out_path``;
        return the summary block."""
        if self._parts == 0:
            pq.write_table(self.schema.empty_table(), out_path)
            return self._summary([], 0)
        con = self.con
        src = f"read_parquet('{_sql_path(self.folder)}/*.parquet')"
        run(con, f"CREATE OR REPLACE TEMP TABLE _a AS SELECT * FROM {src}")
        run(
            con,
            "CREATE OR REPLACE TEMP TABLE _af AS SELECT a.* FROM _a a JOIN (SELECT user_id, campaign_id,"
            " min(_seq) AS s FROM _a GROUP BY user_id, campaign_id) f ON a._seq = f.s",
        )
        res = self.result
        res.duplicates = int(
            one(
                con,
                "SELECT count(*) FROM _a a JOIN _af f USING (user_id, campaign_id)"
                " WHERE a._seq <> f._seq AND a._vh1 = f._vh1 AND a._vh2 = f._vh2",
            )[0]
        )
        differs = ", ".join(
            f"CASE WHEN a.{quote_ident(c)} IS DISTINCT FROM f.{quote_ident(c)} THEN '{c}' END"
            for c in ASSIGNMENT_COLUMNS[2:]
        )
        conflicts = run(
            con,
            f"SELECT a._line, a._raw, a.user_id, a.campaign_id, f._line, concat_ws(', ', {differs})"
            " FROM _a a JOIN _af f USING (user_id, campaign_id)"
            " WHERE a._seq <> f._seq AND NOT (a._vh1 = f._vh1 AND a._vh2 = f._vh2) ORDER BY a._seq",
        )
        self._quarantine(
            conflicts,
            CONFLICTING_ASSIGNMENT,
            [
                f"user {uid!r} already has an assignment to campaign {cid!r} at line {first} with different values"
                + (f" ({what})" if what else "")
                for _, _, uid, cid, first, what in conflicts
            ],
        )
        self._reject_control_conflicts()
        res.accepted = int(one(con, "SELECT count(*) FROM _af")[0])

        select = ", ".join(quote_ident(c) for c in ASSIGNMENT_COLUMNS)
        rel = con.sql(f"SELECT {select} FROM _af ORDER BY campaign_id, user_id")
        with pq.ParquetWriter(out_path, self.schema, compression="snappy") as writer:
            for batch in rel.to_arrow_reader(batch_size=200_000):
                writer.write_table(pa.Table.from_batches([batch]).cast(self.schema))
        campaigns = run(
            con,
            "SELECT campaign_id, variant, count(*), bool_or(is_control) FROM _af"
            " GROUP BY campaign_id, variant ORDER BY campaign_id, variant",
        )
        if events_glob is not None:
            ev = f"read_parquet('{_sql_path(Path(events_glob))}')"
            missing = int(
                one(
                    con,
                    f"SELECT count(DISTINCT user_id) FROM _af WHERE user_id NOT IN (SELECT DISTINCT user_id FROM {ev})",
                )[0]
            )
        else:
            missing = int(one(con, "SELECT count(DISTINCT user_id) FROM _af")[0])
        return self._summary(campaigns, missing)

    def _quarantine(self, rows: list[tuple], reason: str, details: list[str]) -> None:
        """Reject ``rows`` (each starting ``_line, _raw``) for ``reason``."""
        if rows:
            self.quarantine.add(
                self.name, self.file.name, [r[0] for r in rows], [reason] * len(rows), details, [r[1] for r in rows]
            )
            self.result.reject(reason, len(rows))

    def _reject_control_conflicts(self) -> None:
        """With ``control_column``: drop every campaign whose kept rows do not name one control
        variant consistently, into the quarantine (see the module docstring)."""
        if self.spec.control_column is None:
            return
        con = self.con
        flags = run(
            con,
            "SELECT campaign_id, variant, count(*) FILTER (WHERE is_control), count(*) FILTER (WHERE NOT is_control)"
            " FROM _af GROUP BY campaign_id, variant ORDER BY campaign_id, variant",
        )
        by_campaign: dict[str, list[tuple[str, int, int]]] = {}
        for cid, variant, yes, no in flags:
            by_campaign.setdefault(cid, []).append((variant, int(yes), int(no)))
        why: dict[str, str] = {}
        for cid, variants in by_campaign.items():
            mixed = [f"variant {v!r} is flagged control on {y:,} rows and not on {n:,}" for v, y, n in variants if y and n]
            controls = [v for v, y, _ in variants if y]
            if len(controls) > 1:
                mixed.append("variants " + ", ".join(repr(v) for v in controls) + " are each flagged control")
            if mixed:
                why[cid] = "; ".join(mixed)
        if not why:
            return
        con.register("_bad_control", pa.table({"campaign_id": pa.array(list(why), pa.string())}))
        in_bad = "campaign_id IN (SELECT campaign_id FROM _bad_control)"
        rows = run(con, f"SELECT _line, _raw, campaign_id FROM _af WHERE {in_bad} ORDER BY _seq")
        self._quarantine(
            rows,
            CONFLICTING_CONTROL,
            [
                f"campaign {cid!r} does not name one control variant in column '{self.spec.control_column}'"
                f" ({why[cid]}): all its rows are rejected"
                for _, _, cid in rows
            ],
        )
        run(con, f"DELETE FROM _af WHERE {in_bad}")
        con.unregister("_bad_control")

    def _summary(self, campaigns: list[tuple], without_events: int) -> dict:
        by_campaign: dict[str, dict] = {}
        for cid, variant, count, control in campaigns:
            entry = by_campaign.setdefault(cid, {"assigned": 0, "variants": {}, "control": None})
            entry["assigned"] += int(count)
            entry["variants"][variant] = int(count)
            if control:
                entry["control"] = variant
        declared = control_declared(self.spec)
        return {
            "path": self.file.name,
            **self.result.counts(),
            "campaigns": len(by_campaign),
            "by_campaign": by_campaign,
            "control_declared_by": declared,
            "design": self.spec.design,
            "campaigns_without_control": (
                [cid for cid, e in by_campaign.items() if e["control"] is None] if declared else None
            ),
            "assigned_users_without_events": without_events,
        }
