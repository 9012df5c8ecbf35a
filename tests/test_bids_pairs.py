"""Pair strategies, the pairs TSV, chunking and participant selection."""

from __future__ import annotations


import numpy as np
import pytest

from smgic_pydra.bids import (
    Pair,
    all_ordered_pairs,
    all_unordered_pairs,
    make_pairs,
    read_pairs_tsv,
    tile_pairs,
    tile_side,
    to_reference_pairs,
)
from smgic_pydra.io.errors import InputError

KEYS = ["sub-03", "sub-01", "sub-02", "sub-04_ses-1", "sub-04_ses-2"]


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_counts(n):
    keys = [f"sub-{i:02d}" for i in range(n)]
    unordered = all_unordered_pairs(keys)
    ordered = all_ordered_pairs(keys)
    assert len(unordered) == len({frozenset((p.moving, p.fixed)) for p in unordered}) == n * (n - 1) // 2
    assert len(ordered) == len(set(ordered)) == n * (n - 1)
    assert all(p.moving != p.fixed for p in ordered)
    assert len(to_reference_pairs(keys, keys[0])) == n - 1


def test_order_is_documented_and_reference_resolution():
    assert all_unordered_pairs(KEYS)[0] == Pair("sub-01", "sub-02")  # sorted, moving = earlier key
    assert all(p.fixed == "sub-02" for p in to_reference_pairs(KEYS, "02"))
    assert make_pairs("reference:sub-04_ses-2", KEYS)[0].fixed == "sub-04_ses-2"
    with pytest.raises(InputError, match="ambiguous subject"):
        to_reference_pairs(KEYS, "sub-04")
    with pytest.raises(InputError, match=r"unknown subject 'sub-09'; known: sub-01, sub-02"):
        make_pairs("reference:sub-09", KEYS)
    with pytest.raises(ValueError, match="unknown pair strategy"):
        make_pairs("some", KEYS)
    with pytest.raises(ValueError, match="at least two subjects"):
        all_unordered_pairs(["sub-01"])


def test_pairs_tsv(tmp_path):
    good = tmp_path / "pairs.tsv"
    good.write_text("moving\tfixed\tnote\nsub-01\t02\tx\n04_ses-1\tsub-04_ses-2\t\n")
    assert make_pairs(str(good), KEYS) == [Pair("sub-01", "sub-02"), Pair("sub-04_ses-1", "sub-04_ses-2")]
    cases = {
        "moving,fixed\nsub-01,sub-02\n": "needs columns 'moving' and 'fixed'",
        "moving\tfixed\n": "no pairs",
        "moving\tfixed\nsub-01\tsub-01\n": r"pairs.tsv:2: moving and fixed are the same subject sub-01",
        "moving\tfixed\nsub-01\tsub-02\nsub-01\tsub-02\n": r"pairs.tsv:3: duplicate pair sub-01 -> sub-02",
        "moving\tfixed\nsub-01\tsub-07\n": r"pairs.tsv:2: unknown subject 'sub-07'",
        "moving\tfixed\nsub-01\tsub-04\n": r"pairs.tsv:2: ambiguous subject",
    }
    for text, message in cases.items():
        good.write_text(text)
        with pytest.raises(InputError, match=message):
            read_pairs_tsv(good, KEYS)
    with pytest.raises(InputError, match="pairs file not found"):
        read_pairs_tsv(tmp_path / "missing.tsv", KEYS)


@pytest.mark.parametrize("per_job", [1, 2, 4, 7, 9, 100])
@pytest.mark.parametrize("strategy", ["all", "ordered", "reference:03"])
def test_tiles_cover_every_pair_exactly_once_within_their_blocks(per_job, strategy):
    keys = [f"sub-{i:02d}" for i in range(11)]
    pairs = [(p.fixed, p.moving) for p in make_pairs(strategy, keys)]
    block = tile_side(per_job)
    assert block == int(per_job ** 0.5)  # the largest B with B * B <= per_job
    tiles = tile_pairs(pairs, block, "run")
    got = [(t["fixed"][f], t["moving"][m]) for t in tiles for f, m in t["pairs"]]
    assert sorted(got) == sorted(pairs) and len(got) == len(pairs)
    for t in tiles:
        assert 1 <= len(t["pairs"]) <= block * block and len(t["fixed"]) <= block and len(t["moving"]) <= block
        assert t["id"].startswith("run-f") and t["pairs"].dtype == np.int32
        # a tile's subjects are consecutive keys of the sorted list, a whole block
        start = keys.index(t["fixed"][0])
        assert start % block == 0 and t["fixed"] == keys[start:start + block]
    assert len({t["id"] for t in tiles}) == len(tiles)
    n_blocks = -(-len(keys) // block)
    assert len(tiles) <= n_blocks * n_blocks
    with pytest.raises(ValueError):
        tile_side(0)
