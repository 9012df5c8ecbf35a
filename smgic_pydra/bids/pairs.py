"""Pair strategies over subject keys (``sub-01``, ``sub-01_ses-1``; see ``SubjectInputs.key``) and tiles of the pair matrix.

Pairs are ``(moving, fixed)``. In :func:`all_unordered_pairs` the earlier key of the sorted list
is the moving one (``i < j``: moving ``keys[i]``, fixed ``keys[j]``), the paper's N(N-1)/2
protocol (SM-GICNet is symmetric, so the order only decides where files are written).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, permutations
from pathlib import Path

from ..io.errors import InputError, display_path
from .layout import parse_key

STRATEGIES = ("all", "ordered", "reference:LABEL", "FILE.tsv", "template:NAME[:res-N]")


@dataclass(frozen=True, order=True)
class Pair:
    """One registration: ``moving`` is brought onto ``fixed`` (both subject keys)."""

    moving: str
    fixed: str

    @property
    def name(self) -> str:
        return f"{self.moving}_to_{self.fixed}"


def _sorted_unique(keys: Sequence[str]) -> list[str]:
    keys = sorted(set(keys))
    if len(keys) < 2:
        raise ValueError(f"need at least two subjects to make pairs, got {len(keys)}: {', '.join(keys) or '(none)'}")
    return keys


def all_unordered_pairs(keys: Sequence[str]) -> list[Pair]:
    """Every unordered pair once, N(N-1)/2; moving = the earlier key of the sorted list."""
    return [Pair(a, b) for a, b in combinations(_sorted_unique(keys), 2)]


def all_ordered_pairs(keys: Sequence[str]) -> list[Pair]:
    """Both directions of every pair, N(N-1)."""
    return [Pair(a, b) for a, b in permutations(_sorted_unique(keys), 2)]


def _resolve(label: str, keys: Sequence[str], where: str) -> str:
    """The key among ``keys`` named by ``label`` (``sub-`` optional; a subject alone when it has one key)."""
    label = str(label).strip()
    try:
        subject, session, run = parse_key(label)
    except ValueError as exc:
        raise InputError(where, str(exc)) from None
    matches = [k for k in keys if parse_key(k)[0] == subject
               and (session is None or parse_key(k)[1] == session) and (run is None or parse_key(k)[2] == run)]
    if len(matches) != 1:
        problem = "unknown subject" if not matches else f"ambiguous subject (matches {', '.join(matches)})"
        raise InputError(where, f"{problem} {label!r}; known: {', '.join(keys)}")
    return matches[0]


def to_reference_pairs(keys: Sequence[str], reference: str) -> list[Pair]:
    """Every other subject (moving) onto ``reference`` (fixed), N-1 pairs."""
    keys = _sorted_unique(keys)
    ref = _resolve(reference, keys, "reference")
    return [Pair(k, ref) for k in keys if k != ref]


def read_pairs_tsv(path, keys: Sequence[str]) -> list[Pair]:
    """Pairs from a TSV with columns ``moving`` and ``fixed`` (labels with or without ``sub-``).

    Refuses missing columns, rows with more fields than the header, unknown or ambiguous subjects,
    self-pairs, duplicates and an empty list, naming the file and line. A UTF-8 BOM is ignored.
    """
    path = Path(path)
    shown = display_path(path)
    keys = sorted(set(keys))
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # a BOM is not part of the header
            rows = list(csv.DictReader(fh, delimiter="\t"))
            header = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise InputError(shown, "pairs file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(shown, f"not a readable TSV file ({exc})") from exc
    if not rows:
        raise InputError(shown, "no pairs (expected a header 'moving<TAB>fixed' and one row per pair)")
    if not {"moving", "fixed"} <= set(header):
        raise InputError(shown, f"needs columns 'moving' and 'fixed' (tab-separated), found: {', '.join(header)}")
    pairs, seen = [], set()
    for line, row in enumerate(rows, start=2):
        where = f"{shown}:{line}"
        if None in row:  # csv puts fields beyond the header under the key None
            raise InputError(where, f"{len(header) + len(row[None])} fields, the header has {len(header)}")
        moving = _resolve(row["moving"] or "", keys, where)
        fixed = _resolve(row["fixed"] or "", keys, where)
        if moving == fixed:
            raise InputError(where, f"moving and fixed are the same subject {moving}")
        pair = Pair(moving, fixed)
        if pair in seen:
            raise InputError(where, f"duplicate pair {moving} -> {fixed}")
        seen.add(pair)
        pairs.append(pair)
    return pairs


def make_pairs(strategy: str, keys: Sequence[str]) -> list[Pair]:
    """Pairs for a ``--pairs`` value: ``all``, ``ordered``, ``reference:LABEL`` or a TSV file path."""
    strategy = str(strategy).strip()
    if strategy == "all":
        return all_unordered_pairs(keys)
    if strategy == "ordered":
        return all_ordered_pairs(keys)
    if strategy.startswith("reference:"):
        return to_reference_pairs(keys, strategy.split(":", 1)[1])
    if strategy.endswith(".tsv"):
        return read_pairs_tsv(strategy, keys)
    raise ValueError(f"unknown pair strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")


def tile_side(pairs_per_job: int) -> int:
    """``B``, the subjects per side of a tile: the largest with ``B * B <= pairs_per_job`` (at least 1)."""
    if int(pairs_per_job) < 1:
        raise ValueError(f"pairs_per_job must be >= 1, got {pairs_per_job}")
    return max(1, math.isqrt(int(pairs_per_job)))


def tile_pairs(pairs: Sequence[tuple[str, str]], block: int, prefix: str = "t") -> list[dict]:
    """Cut ``pairs`` (``(fixed, moving)`` subject keys) into tiles of the N x N matrix of the sorted keys.

    A tile holds the pairs whose fixed key is in one block of ``block`` consecutive keys and whose
    moving key is in another (or the same) block: at most ``block**2`` pairs, between at most
    ``2 * block`` subjects. Returns ``[{"id": "<prefix>-f<i>-m<j>", "fixed": [keys], "moving": [keys],
    "pairs": int32 array (n, 2) of (fixed index, moving index) into those lists}]``, every pair in
    exactly one tile, pairs in their given order within a tile. O(P log P) with NumPy, no object per pair.
    """
    import numpy as np

    if int(block) < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if not len(pairs):
        return []
    keys = sorted({k for pair in pairs for k in pair})
    index = {k: i for i, k in enumerate(keys)}
    ij = np.fromiter((index[k] for pair in pairs for k in pair), dtype=np.int64, count=2 * len(pairs)).reshape(-1, 2)
    blocks = ij // int(block)
    n_blocks = (len(keys) + block - 1) // block
    tile_of = blocks[:, 0] * n_blocks + blocks[:, 1]
    order = np.argsort(tile_of, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(tile_of[order]) != 0])
    tiles = []
    for start, stop in zip(starts, list(starts[1:]) + [len(order)]):
        members = order[start:stop]
        bf, bm = (int(b) for b in blocks[members[0]])
        f0, m0 = bf * block, bm * block
        local = (ij[members] - np.array([f0, m0])).astype(np.int32)
        tiles.append({"id": f"{prefix}-f{bf:04d}-m{bm:04d}", "fixed": keys[f0:f0 + block], "moving": keys[m0:m0 + block],
                      "pairs": local})
    return tiles
