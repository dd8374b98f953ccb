"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class ChurnkitError(Exception):
    """A problem the user can fix (bad input, bad config, missing file).

    The message must be one line that says what was wrong and where.
    """


class ConfigError(ChurnkitError):
    """A YAML config that does not validate."""


class InputFileError(ChurnkitError):
    """A whole input file cannot be used (unreadable, unknown format, missing column)."""
