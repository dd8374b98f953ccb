"""The edges: files, engines and MLflow. Used by ``events``, ``flows`` and the faces (CLI,
service), never by the domain packages, which take and return data.

``workspace``: the catalogue of artefact paths; ``artifacts``: atomic Parquet/JSON and list
writers; ``warehouse``: DuckDB/Spark connections and workspace tables; ``tracking``: MLflow.
"""
