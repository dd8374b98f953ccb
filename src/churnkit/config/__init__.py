"""Every churnkit YAML as a typed, frozen pydantic model, loaded once at the edge and passed down.

Unknown keys are rejected (``extra="forbid"``) so a typo is an error that names the key,
not a silently ignored setting. A problem's ``model:`` and ``tuning:`` blocks are typed too
and checked when the YAML loads, not when training starts. Presets (problems, sources) ship
inside the package (``churnkit/defaults/``) and are found with :mod:`importlib.resources`.

One module per kind of YAML: ``project`` (``configs/churnkit.yaml``), ``sources``,
``problems`` with ``estimators`` (model and tuning blocks), and ``loading``.
"""

from churnkit.config.base import StrictModel, load_yaml, parse_model
from churnkit.config.estimators import (
    DEFAULT_METRIC,
    DEFAULT_SPACE,
    METRICS,
    ClassifierSettings,
    LTVSettings,
    PrunerSettings,
    SearchParam,
    TuningSettings,
    canonical_params,
    classifier_settings,
    ltv_settings,
    tuning_settings,
)
from churnkit.config.loading import (
    is_yaml_path,
    load_churnkit_config,
    load_problem,
    load_source,
    presets,
    problem_files,
)
from churnkit.config.problems import ActivityEvents, CutoffGrid, FeatureSelection, ProblemConfig
from churnkit.config.project import (
    TIERS,
    AlertRule,
    AlertSettings,
    CampaignSettings,
    ChurnkitConfig,
    IngestSettings,
    KpiSettings,
    ScoringSettings,
    SegmentSettings,
    SimulateSettings,
)
from churnkit.config.sources import (
    DEFAULT_SOURCE,
    AssignmentsTableSource,
    Case,
    Condition,
    CsvOptions,
    Design,
    EventFields,
    FieldSpec,
    LookupTable,
    SourceConfig,
    TimestampSpec,
    UsersTableSource,
)

__all__ = [
    "DEFAULT_METRIC",
    "DEFAULT_SOURCE",
    "DEFAULT_SPACE",
    "METRICS",
    "TIERS",
    "ActivityEvents",
    "AlertRule",
    "AlertSettings",
    "AssignmentsTableSource",
    "CampaignSettings",
    "Case",
    "ChurnkitConfig",
    "ClassifierSettings",
    "Condition",
    "CsvOptions",
    "CutoffGrid",
    "Design",
    "EventFields",
    "FeatureSelection",
    "FieldSpec",
    "IngestSettings",
    "KpiSettings",
    "LTVSettings",
    "LookupTable",
    "ProblemConfig",
    "PrunerSettings",
    "ScoringSettings",
    "SearchParam",
    "SegmentSettings",
    "SimulateSettings",
    "SourceConfig",
    "StrictModel",
    "TimestampSpec",
    "TuningSettings",
    "UsersTableSource",
    "canonical_params",
    "classifier_settings",
    "is_yaml_path",
    "load_churnkit_config",
    "load_problem",
    "load_source",
    "load_yaml",
    "ltv_settings",
    "parse_model",
    "presets",
    "problem_files",
    "tuning_settings",
]
