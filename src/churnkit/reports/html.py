"""Self-contained HTML: Jinja2 templates shipped in the package, images inlined.

No file a report names is fetched when it opens: charts are inline SVG or PNG data URIs,
styles are in the page; only the links to list files point outside it (they are local).
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

if TYPE_CHECKING:  # annotation only: the CLI prints with number() and need not load matplotlib
    from matplotlib.figure import Figure


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("churnkit.reports", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["pct"] = percent
    return env


def render(template: str, **context: Any) -> str:
    """``template`` (a file in ``reports/templates``) filled with ``context``."""
    return _env().get_template(template).render(**context)


def png(fig: Figure, dpi: int = 90) -> str:
    """A figure as a PNG data URI (for an ``<img src>``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sparkline(values: Any, width: int = 120, height: int = 28) -> str:
    """A tiny inline SVG line of ``values`` (missing points skipped); empty without two points."""
    v = np.asarray(values, dtype="float64")
    ok = np.flatnonzero(np.isfinite(v))
    if len(ok) < 2:
        return ""
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    span = hi - lo or 1.0
    xs = ok / max(len(v) - 1, 1) * (width - 2) + 1
    ys = height - 1 - (v[ok] - lo) / span * (height - 2)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/></svg>')


def number(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    v = float(v)
    if v.is_integer() or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:,.2f}"


def percent(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{float(v) * 100:+.1f}%"
