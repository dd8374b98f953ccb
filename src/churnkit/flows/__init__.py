"""One function per command, callable from the CLI, notebooks and tests.

Each flow puts I/O edges (the workspace catalogue, Parquet, DuckDB, MLflow) around the pure
steps of the domain packages and returns data; the CLI only parses and prints. A flow takes
a :class:`~churnkit.flows.project.Project`: the workspace, the project config, an MLflow URI.
"""
