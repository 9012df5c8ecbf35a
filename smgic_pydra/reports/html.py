"""HTML pages of the reports: jinja2 templates (package data in ``templates/``) and figures embedded
as ``data:`` URIs, so a page works offline and without its folder (no CDN, no script)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from ..io.atomic import atomic_path


def environment():
    """The jinja2 environment of the report templates (HTML autoescaped)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("smgic_pydra.reports", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def figure_uri(fig) -> str:
    """A matplotlib figure as an SVG ``data:`` URI (:func:`~.svg.figure_svg`); the figure is closed."""
    from .svg import figure_svg

    return f"data:image/svg+xml;base64,{base64.b64encode(figure_svg(fig).encode('utf-8')).decode('ascii')}"


def file_uri(path) -> str:
    """A PNG or SVG file as a ``data:`` URI."""
    path = Path(path)
    mime = {".png": "image/png", ".svg": "image/svg+xml"}[path.suffix.lower()]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def relative_href(path, page_dir) -> str:
    """``path`` relative to the page's folder, with forward slashes (for ``href`` / ``data``)."""
    return Path(os.path.relpath(Path(path).absolute(), Path(page_dir).absolute())).as_posix()


def render_page(template: str, path, **context) -> Path:
    """Render ``templates/<template>`` with ``context`` into ``path`` (atomically); returns the path."""
    text = environment().get_template(template).render(**context)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
