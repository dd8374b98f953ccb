"""The users table: one row per user with signup time and attributes, validated like events.

Rows without a user id or with an unusable ``signup_ts`` are quarantined (``table = 'users'``).
A user id that appears again with identical values is a duplicate (dropped, counted); with
different values the later row is rejected as ``conflicting_user_id`` (the first row, by
line, is kept) and the detail names the columns that differ. ``read = accepted + duplicates
+ rejected`` holds here too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnkit.config import FieldSpec, UsersTableSource
from churnkit.contracts import UTC_US, users_arrow_schema
from churnkit.errors import ConfigError
from churnkit.events.mapping import field_values, text_field
from churnkit.events.readers import RawChunk
from churnkit.events.schema import (
    BAD_TIMESTAMP,
    CONFLICTING_USER_ID,
    MISSING_USER_ID,
    TIMESTAMP_OUT_OF_RANGE,
)
from churnkit.events.store import _sql_path, one, run
from churnkit.events.tables import StagedTable, quote_ident
from churnkit.events.timestamps import parse_timestamps
from churnkit.events.validate import describe_spec, iso_utc

RESERVED = {"user_id", "signup_ts"}


def users_required_columns(spec: UsersTableSource) -> dict[str, str]:
    out: dict[str, str] = {}
    for column in spec.user_id.source_columns():
        out.setdefault(column, "users.user_id")
    if spec.signup_ts is not None:
        for column in spec.signup_ts.source_columns():
            out.setdefault(column, "users.signup_ts")
    for name, column in spec.attributes.items():
        out.setdefault(column, f"users.attributes.{name}")
    return out


def check_users_spec(spec: UsersTableSource, source_name: str) -> None:
    clash = sorted(RESERVED & set(spec.attributes))
    if clash:
        raise ConfigError(f"source '{source_name}': users attribute name '{clash[0]}' is reserved")


class UsersTable(StagedTable):
    """Streams one users file into a staging folder, then resolves duplicates in DuckDB."""

    name = "users"

    def _prepare(self) -> None:
        self.attributes = list(self.spec.attributes)
        self.schema = users_arrow_schema(self.attributes)

    def _chunk(
        self,
        chunk: RawChunk,
        lines: list[int],
        reasons: list[str],
        details: list[str],
        raws: list[str],
    ) -> None:
        n, clean, spec = chunk.n, chunk.text_clean, self.spec
        user_id = text_field(chunk.columns, spec.user_id, n, clean, is_id=True)
        missing = ~np.asarray(pc.is_valid(user_id).to_numpy(zero_copy_only=False), dtype=bool)
        if spec.signup_ts is not None:
            raw_ts = field_values(chunk.columns, spec.signup_ts, n, clean)
            ts = parse_timestamps(raw_ts, spec.signup_ts.formats, spec.signup_ts.timezone)
            bad_ts = ~missing & ~ts.ok
            out_of_range = ~missing & ts.ok & ((ts.us < self.min_us) | (ts.us >= self.as_of_us))
            us, ts_ok = ts.us, ts.ok
        else:
            raw_ts = None
            bad_ts = out_of_range = np.zeros(n, dtype=bool)
            us, ts_ok = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        attrs = {
            name: text_field(chunk.columns, _column_spec(column), n, clean)
            for name, column in spec.attributes.items()
        }
        codes = np.select([missing, bad_ts, out_of_range], [1, 2, 3], 0)
        bad = np.flatnonzero(codes)
        if len(bad):
            bad_raw = chunk.raw_of(bad)
            ts_texts = (
                raw_ts.take(pa.array(bad)).cast(pa.string()).to_pylist()
                if raw_ts is not None
                else []
            )
            formats = list(spec.signup_ts.formats) if spec.signup_ts is not None else []
            for k, i in enumerate(bad):
                code = int(codes[i])
                lines.append(int(chunk.line[i]))
                raws.append(bad_raw[k])
                if code == 1:
                    reasons.append(MISSING_USER_ID)
                    details.append(f"user_id is empty ({describe_spec(spec.user_id)})")
                elif code == 2:
                    reasons.append(BAD_TIMESTAMP)
                    text = ts_texts[k]
                    details.append(
                        "signup_ts is empty"
                        if text is None
                        else f"signup_ts {text!r} matches none of {formats}"
                    )
                else:
                    reasons.append(TIMESTAMP_OUT_OF_RANGE)
                    when = int(us[i])
                    details.append(
                        f"signup_ts {iso_utc(when)} is before min_ts {iso_utc(self.min_us)}"
                        if when < self.min_us
                        else f"signup_ts {iso_utc(when)} is at or after as_of {iso_utc(self.as_of_us)}"
                    )
            for code, reason in (
                (1, MISSING_USER_ID),
                (2, BAD_TIMESTAMP),
                (3, TIMESTAMP_OUT_OF_RANGE),
            ):
                self.result.reject(reason, int(np.count_nonzero(codes == code)))
        ok = codes == 0
        if not ok.any():
            return
        mask = pa.array(ok)
        signup = pa.array(us[ok], pa.int64(), mask=~ts_ok[ok]).cast(UTC_US)
        table = pa.table(
            {
                "user_id": user_id.filter(mask),
                "signup_ts": signup,
                **{a: attrs[a].filter(mask) for a in attrs},
            },
            schema=self.schema,
        )
        self._stage(table, chunk, ok)

    def finalize(self, out_path: Path, events_glob: str | None) -> dict:
        """Resolve repeats, write the users Parquet to ``out_path``; return the summary block."""
        res = self.result
        cols = ["user_id", "signup_ts", *self.attributes]
        if self._parts == 0:
            pq.write_table(self.schema.empty_table(), out_path)
            return self._summary(0, 0)
        src = f"read_parquet('{_sql_path(self.folder)}/*.parquet')"
        con = self.con
        run(con, f"CREATE OR REPLACE TEMP TABLE _u AS SELECT * FROM {src}")
        run(
            con,
            "CREATE OR REPLACE TEMP TABLE _uf AS SELECT u.* FROM _u u"
            " JOIN (SELECT user_id, min(_seq) AS s FROM _u GROUP BY user_id) f ON u._seq = f.s",
        )
        select = ", ".join(quote_ident(c) for c in cols)
        rel = con.sql(f"SELECT {select} FROM _uf ORDER BY user_id")
        with pq.ParquetWriter(out_path, self.schema, compression="snappy") as writer:
            for batch in rel.to_arrow_reader(batch_size=200_000):
                writer.write_table(pa.Table.from_batches([batch]).cast(self.schema))
        accepted = int(one(con, "SELECT count(*) FROM _uf")[0])
        dups = int(
            one(
                con,
                "SELECT count(*) FROM _u u JOIN _uf f USING (user_id)"
                " WHERE u._seq <> f._seq AND u._vh1 = f._vh1 AND u._vh2 = f._vh2",
            )[0]
        )
        differs = (
            ", ".join(
                f"CASE WHEN u.{quote_ident(c)} IS DISTINCT FROM f.{quote_ident(c)} THEN '{c}' END" for c in cols[1:]
            )
            or "NULL"
        )
        conflicts = run(
            con,
            f"SELECT u._line, u._raw, u.user_id, f._line, concat_ws(', ', {differs}) FROM _u u JOIN _uf f"
            " USING (user_id) WHERE u._seq <> f._seq AND NOT (u._vh1 = f._vh1 AND u._vh2 = f._vh2)"
            " ORDER BY u._seq",
        )
        if conflicts:
            self.quarantine.add(
                "users",
                self.file.name,
                [c[0] for c in conflicts],
                [CONFLICTING_USER_ID] * len(conflicts),
                [
                    f"user_id {uid!r} already has a row at line {first} with different values"
                    + (f" ({what})" if what else "")
                    for _, _, uid, first, what in conflicts
                ],
                [c[1] for c in conflicts],
            )
        res.accepted = accepted
        res.duplicates = dups
        res.reject(CONFLICTING_USER_ID, len(conflicts))
        without_events = events_missing = 0
        if events_glob is not None:
            ev = f"read_parquet('{_sql_path(Path(events_glob))}')"
            without_events = int(
                one(
                    con,
                    f"SELECT count(*) FROM _uf WHERE user_id NOT IN (SELECT DISTINCT user_id FROM {ev})",
                )[0]
            )
            events_missing = int(
                one(
                    con,
                    f"SELECT count(DISTINCT user_id) FROM {ev} WHERE user_id NOT IN (SELECT user_id FROM _uf)",
                )[0]
            )
        return self._summary(without_events, events_missing)

    def _summary(self, without_events: int, events_missing: int) -> dict:
        return {
            "path": self.file.name,
            **self.result.counts(),
            "users_without_events": without_events,
            "event_users_missing_from_table": events_missing,
        }


def _column_spec(column: str) -> FieldSpec:
    return FieldSpec(column=column)

