"""PNG feedback drawn by trusted checks.

Uses matplotlib's object API (a bare `Figure`, no pyplot): no global figure registry, so a worker that
grades many runs leaks nothing between them, and no GUI backend is ever touched."""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib.figure import Figure


def render_png(draw: Callable[[Figure], None], *, size: tuple[float, float] = (6.0, 3.0), dpi: int = 90) -> bytes:
    """Call `draw(fig)` on a fresh figure and return it as PNG bytes (small enough for attach_image)."""
    fig = Figure(figsize=size, layout="constrained")
    draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
