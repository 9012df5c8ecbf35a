"""Configuration: validation and JSON round trip."""

import pytest

from smgic_pydra.config import SMGICNetConfig, small_config


def test_json_round_trip_is_exact():
    cfg = small_config(attention_gate="code", lambda_gradicon=0.7)
    assert SMGICNetConfig.from_json(cfg.to_json()) == cfg


def test_level_shapes_and_validation():
    cfg = SMGICNetConfig(grid_shape=(64, 80, 64))
    assert [cfg.level_shape(k) for k in (1, 2, 3, 4)] == [(8, 10, 8), (16, 20, 16), (32, 40, 32), (64, 80, 64)]
    with pytest.raises(ValueError, match="divisible by 16"):
        SMGICNetConfig(grid_shape=(64, 70, 64))
    with pytest.raises(ValueError, match="unknown config keys"):
        SMGICNetConfig.from_dict({"nope": 1})
