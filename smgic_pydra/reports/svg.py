"""SVG text of matplotlib figures (text kept as ``<text>``, raster images at 100 dpi)."""

from __future__ import annotations

import io


def figure_svg(fig, **savefig) -> str:
    """The SVG document of a matplotlib figure, which is then closed; ``savefig``: extra
    ``Figure.savefig`` arguments (e.g. ``facecolor``). Text stays text (``svg.fonttype: none``), so
    the numbers in a figure can be read from its file."""
    import matplotlib
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", dpi=100, **savefig)
    plt.close(fig)
    return buffer.getvalue()
