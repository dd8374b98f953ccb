"""Figures (and, later, HTML reports) drawn from plain data: no I/O, no MLflow."""
