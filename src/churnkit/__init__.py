"""churnkit: churn, purchase and lifetime-value scores from behaviour logs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("churnkit")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
