"""Pydra task: join the (nested) row lists of several workflow branches into one flat list."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["out"])
def Gather(a: list, b: list) -> list:
    """Rows of ``a`` then ``b``, flattened from the nested lists that combined splits give."""
    from smgic_pydra.reports.rows import flatten_rows

    return flatten_rows(a) + flatten_rows(b)
