"""Event ingestion: raw logs (CSV / Parquet / JSON Lines) -> validated events in the workspace.

Modules, one job each:

- ``files``: which files to read and in which format;
- ``lines`` / ``csvparse``: text -> lines -> records, exact line numbers, bounded memory;
- ``readers``: one file -> chunks of raw rows (all source columns, line numbers, row keys);
- ``timestamps`` / ``mapping``: source columns -> contract fields (formats, zones, numbers);
- ``validate``: a reason code for every rejected row;
- ``users``: the users table (signup time, attributes);
- ``store``: staging, the DuckDB dedup/sort/partition pass (and the merge of an append),
  reading events back;
- ``partitions``: the month files, the row keys of each run, links between versions;
- ``history``: the committed versions an ingest builds on, the run ledger, cleanup;
- ``ingest``: reading, validating and committing one ingest (``flows.ingest`` runs it);
  source configs are loaded by ``churnkit.config``.

Events land in ``workspace.events_dir`` (inside the current data version) as Parquet, hive-partitioned by UTC month
(``events/month=YYYY-MM/part-0.parquet``) or one file (``partition_by: none``), rows sorted by
(user_id, ts) within each file. Read them with :func:`read_events` (pandas), or in DuckDB with
``read_parquet('<events_dir>/**/*.parquet', hive_partitioning=true)`` (see
:func:`events_sql` and :func:`events_glob`).
"""

from churnkit.events.store import events_glob, events_sql, read_events

__all__ = ["events_glob", "events_sql", "read_events"]
