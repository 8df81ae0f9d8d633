"""PNG feedback drawn by trusted checks.

Uses matplotlib's object API (a bare `Figure`, no pyplot): no global figure registry, so a worker that
grades many runs leaks nothing between them, and no GUI backend is ever touched. Checks never call this
directly for feedback: `Grading.figure` does, so that a figure that fails to draw is reported to staff
and never discards a run's results."""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib.figure import Figure


def render_png(draw: Callable[[Figure], None], *, size: tuple[float, float] = (6.0, 3.0), dpi: int = 90,
               layout: str | None = "constrained") -> bytes:
    """Call `draw(fig)` on a fresh figure and return it as PNG bytes. `layout=None` for figures that place
    their axes by hand (`fig.add_axes`)."""
    fig = Figure(figsize=size, layout=layout)
    draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
