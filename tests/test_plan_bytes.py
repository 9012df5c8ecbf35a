"""The space estimate per output policy (closed forms of the per-role sizes): identity and metrics write
only table rows, compact one velocity file per unordered pair for SM-GICNet and the warps for the others,
full adds the Jacobian and the .h5 to all."""

import pytest

from smgic_pydra.workflows.plan_summary import (BYTES_PER_PAIR, BYTES_PER_VOXEL, COMPACT_BYTES_PER_NETWORK_VOXEL,
                                                NETWORK_VOXELS, TABLE_BYTES, pair_bytes)

FIXED, MOVING = 7_000_000, 5_000_000


def test_bytes_per_policy_and_method():
    table = TABLE_BYTES["pair"]
    assert pair_bytes(FIXED, MOVING, "metrics", True, 0) == table
    for policy in ("all", "full", "warps", "compact"):
        assert pair_bytes(FIXED, MOVING, policy, True, 0, "identity") == table
    warps = table + BYTES_PER_VOXEL["warp"] * FIXED + BYTES_PER_VOXEL["inverse_warp"] * MOVING + BYTES_PER_PAIR["sidecar"]
    assert pair_bytes(FIXED, MOVING, "warps", True, 0) == pytest.approx(warps)
    assert pair_bytes(FIXED, MOVING, "compact", True, 0, "synquick") == pytest.approx(warps)
    compact = table + BYTES_PER_PAIR["sidecar"] + 0.5 * COMPACT_BYTES_PER_NETWORK_VOXEL * NETWORK_VOXELS
    assert pair_bytes(FIXED, MOVING, "compact", True, 0, "smgicnet", 0.5) == pytest.approx(compact)
    extra = (BYTES_PER_VOXEL["jacobian"] + BYTES_PER_VOXEL["warp_h5"]) * FIXED
    assert pair_bytes(FIXED, MOVING, "full", True, 0) - pair_bytes(FIXED, MOVING, "all", True, 0) == pytest.approx(extra)
    assert pair_bytes(FIXED, MOVING, "all", True, 0) - pair_bytes(FIXED, MOVING, "all", False, 0) == BYTES_PER_PAIR["figures"]
