"""SM-GICNet: shapes per level, gate variants, no weight sharing, inverse fields, identity start, gradients."""

import numpy as np
import pytest
import torch
from torch import nn

from smgic_pydra.config import SMGICNetConfig
from smgic_pydra.network import LevelOutput, SMGICNet, count_parameters
from smgic_pydra.network.difference import difference_weighted
from smgic_pydra.transforms import compose, norm_to_voxel, upsample_field

GRID = (64, 80, 64)  # non-cubic network grid of the task
SMALL = (32, 48, 32)  # smallest non-cubic grid (sides divisible by 16) for the heavier checks


def config(grid=GRID, **changes) -> SMGICNetConfig:
    return SMGICNetConfig(grid_shape=grid, voxel_size_mm=3.0, **changes)


def images(grid, batch=1, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(batch, 1, *grid, generator=gen, dtype=dtype) for _ in range(2))


def model(cfg, seed=0) -> SMGICNet:
    torch.manual_seed(seed)
    return SMGICNet(cfg)


def heads(net: SMGICNet):
    """The last (velocity) convolution of each level's flow head."""
    return [m.last for m in net.modules() if hasattr(m, "last") and isinstance(m.last, nn.Conv3d)]


def _scipy_conv3d(x, weight, bias, stride):
    """Reference: zero-padded 3-D cross-correlation per (out, in) channel pair, float64 (scipy)."""
    from scipy import ndimage

    out = np.stack([sum(ndimage.correlate(x[i], weight[o, i], mode="constant") for i in range(x.shape[0]))
                    for o in range(weight.shape[0])])[:, ::stride, ::stride, ::stride]
    return out if bias is None else out + bias[:, None, None, None]


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")
@pytest.mark.parametrize("torch_threads", [1, 2], indirect=True)
@pytest.mark.parametrize("in_ch,out_ch,kernel,stride,bias,grid", [
    (32, 32, 1, 1, True, (8, 9, 10)),  # the gates' 1x1x1: ATen's own choice on one thread is slow_conv3d
    (5, 8, 3, 1, False, (16, 16, 12)),  # N C D H = 1280 <= 20480: slow_conv3d on any thread count
    (4, 4, 3, 2, False, (10, 8, 6)),  # the Down block's stride 2
])
def test_conv3d_runs_onednn_and_matches_scipy(torch_threads, in_ch, out_ch, kernel, stride, bias, grid):
    """The network's Conv3d on a float32 CPU tensor runs oneDNN (never ATen's unvectorised ``slow_conv3d``),
    equals a scipy float64 correlation to float32 rounding, and back-propagates as ATen's float64 conv3d."""
    from torch.profiler import ProfilerActivity, profile

    from smgic_pydra.network.blocks import Conv3d

    torch.manual_seed(0)
    conv = Conv3d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=bias)
    x = torch.randn(1, in_ch, *grid, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        y = conv(x)
    ops = {event.key for event in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops and "aten::slow_conv3d_forward" not in ops
    weight = conv.weight.detach().double()
    b = None if conv.bias is None else conv.bias.detach().double()
    expected = _scipy_conv3d(x.detach()[0].double().numpy(), weight.numpy(), None if b is None else b.numpy(), stride)
    np.testing.assert_allclose(y.detach()[0].double().numpy(), expected, atol=2e-5, rtol=1e-5)
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    x64 = x.detach().double().requires_grad_(True)
    w64 = weight.clone().requires_grad_(True)
    torch.nn.functional.conv3d(x64, w64, b, stride=stride, padding=kernel // 2).backward(grad_out.double())
    np.testing.assert_allclose(x.grad.double().numpy(), x64.grad.numpy(), atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(conv.weight.grad.double().numpy(), w64.grad.numpy(), atol=1e-4, rtol=1e-5)


def test_conv3d_under_autocast_is_autocast():
    """Under CPU bfloat16 autocast the network's Conv3d is autocast's conv3d (bfloat16 out, as nn.Conv3d)."""
    from smgic_pydra.network.blocks import Conv3d

    torch.manual_seed(0)
    conv, x = Conv3d(3, 4, 3, padding=1), torch.randn(1, 3, 6, 6, 6)
    reference = nn.Conv3d(3, 4, 3, padding=1)
    reference.load_state_dict(conv.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, expected = conv(x), reference(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, expected)


@pytest.mark.parametrize("signed", [True, False])
def test_difference_weighting_against_numpy(signed):
    gen = torch.Generator().manual_seed(1)
    moving, fixed = torch.rand(2, 1, 6, 7, 8, generator=gen, dtype=torch.float64).unbind(0)
    moving, fixed = torch.stack((moving, 3 * moving)), torch.stack((fixed, fixed))  # 2 samples, own ranges
    got_m, got_f = difference_weighted(moving, fixed, signed=signed)
    for b in range(2):
        m, f = moving[b].numpy(), fixed[b].numpy()
        d = m - f if signed else np.abs(m - f)  # non-negative inputs: |m| - |f| = m - f
        weight = 0.5 + 0.5 * (d - d.min()) / (d.max() - d.min())
        np.testing.assert_allclose(got_m[b].numpy(), weight * m, rtol=1e-12)
        np.testing.assert_allclose(got_f[b].numpy(), weight * f, rtol=1e-12)
    # identical inputs: constant difference, the zero guard gives weight 0.5 (no 0/0)
    same_m, _ = difference_weighted(fixed, fixed, signed=signed)
    np.testing.assert_allclose(same_m.numpy(), 0.5 * fixed.numpy(), rtol=1e-12)


@pytest.mark.parametrize("gate", ["paper", "code"])
def test_output_shapes_per_level(gate):
    cfg = config(attention_gate=gate)
    net = model(cfg)
    moving, fixed = images(GRID)
    with torch.no_grad():
        outs = net(moving, fixed)
    assert [o.level for o in outs] == [1, 2, 3, 4]
    expected = {1: (8, 10, 8), 2: (16, 20, 16), 3: (32, 40, 32), 4: (64, 80, 64)}
    for o in outs:
        grid = expected[o.level]
        assert isinstance(o, LevelOutput)
        for name in ("velocity", "disp", "disp_inv"):
            assert getattr(o, name).shape == (1, 3, *grid), name
        for name in ("moving", "fixed", "warped", "fixed_inv_warped"):
            assert getattr(o, name).shape == (1, 1, *grid), name
        assert (o.warped_pre is None) == (o.level == 1)
        has_energy = o.level in (2, 3)
        for name in ("moving_energy", "fixed_energy", "warped_energy"):
            value = getattr(o, name)
            assert (value is not None) == has_energy, name
            if has_energy:
                assert value.shape == (1, 1, *grid)
        assert torch.isfinite(o.disp).all() and torch.isfinite(o.disp_inv).all()
    assert outs[-1].moving is moving  # level 4 sees the image itself


def test_upto_level_truncates_and_bad_inputs_raise():
    net = model(config(SMALL))
    moving, fixed = images(SMALL)
    with torch.no_grad():
        assert [o.level for o in net(moving, fixed, upto_level=2)] == [1, 2]
    with pytest.raises(ValueError, match="moving image must be"):
        net(moving[..., :16], fixed)
    with pytest.raises(ValueError, match="upto_level"):
        net(moving, fixed, upto_level=5)


def test_no_shared_parameters_or_reused_modules():
    net = model(config(SMALL))
    registered = list(net.named_parameters(remove_duplicate=False))
    assert len({id(p) for _, p in registered}) == len(registered)
    assert len({p.data_ptr() for _, p in registered}) == len(registered)
    assert len(list(net.named_modules(remove_duplicate=False))) == len(list(net.named_modules()))
    # per-level nets have disjoint parameters that together are the whole model
    per_level = [{id(p) for p in net.level_modules(k).parameters()} for k in range(1, 5)]
    assert sum(len(s) for s in per_level) == len(set().union(*per_level)) == len(registered)
    assert count_parameters(net) == sum(count_parameters(net.level_modules(k)) for k in range(1, 5))
    # every convolution is applied exactly once per forward pass (no module reused inside a level)
    calls = {}
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))]
    for m in convs:
        m.register_forward_hook(lambda mod, *_: calls.__setitem__(mod, calls.get(mod, 0) + 1))
    with torch.no_grad():
        net(*images(SMALL))
    assert len(calls) == len(convs) and set(calls.values()) == {1}


@pytest.mark.parametrize("upto_level", [1, 3, 4])
def test_inference_velocity_is_the_forward_velocity_bit_for_bit(upto_level):
    """``velocity`` skips what only training reads (inverse fields, warped images, the last integration) and
    returns the very tensor ``forward`` does, at every level the registration stops at."""
    net = model(config(SMALL))
    moving, fixed = images(SMALL, seed=3)
    with torch.inference_mode():
        reference = net(moving, fixed, upto_level=upto_level)[-1].velocity
        got = net.velocity(moving, fixed, upto_level=upto_level)
    assert got.shape == (1, 3, *net.cfg.level_shape(upto_level))
    assert torch.equal(got, reference)
    with pytest.raises(ValueError, match="upto_level"):
        net.velocity(moving, fixed, upto_level=0)


def test_register_inverse_composes_to_identity():
    net = model(config(SMALL)).double()
    moving, fixed = images(SMALL, dtype=torch.float64)
    with torch.no_grad():
        reg = net.register(moving, fixed)
    disp_vox = norm_to_voxel(reg.disp).abs()
    assert disp_vox.mean() > 0.03  # a non-trivial field at initialization
    for residual in (compose(reg.disp_inv, reg.disp), compose(reg.disp, reg.disp_inv)):
        residual = norm_to_voxel(residual).abs()
        assert residual.mean() < 0.1 * disp_vox.mean()
        assert residual.max() < 0.1  # voxels
    assert reg.warped.shape == moving.shape


def test_velocity_stays_within_range_when_saturated():
    cfg = config(SMALL, range_flow=0.3)
    net = model(cfg)
    with torch.no_grad():
        for conv in heads(net):
            conv.weight.mul_(1e4)  # drive the Softsign towards +-1
        outs = net(*images(SMALL))
    previous = None
    for o in outs:
        own = o.velocity if previous is None else o.velocity - upsample_field(previous, o.velocity.shape[-3:])
        assert own.abs().max() < cfg.range_flow * (1 + 1e-6)
        assert own.abs().max() > 0.9 * cfg.range_flow  # the bound is reached, so the check is not vacuous
        previous = o.velocity
    assert outs[-1].velocity.abs().max() <= 4 * cfg.range_flow


def test_zero_velocity_head_gives_identity():
    net = model(config(SMALL)).double()  # float64: the identity warp is then exact to rounding
    with torch.no_grad():
        for conv in heads(net):
            conv.weight.zero_()
        outs = net(*images(SMALL, dtype=torch.float64))
    assert len(heads(net)) == 4
    for o in outs:
        for field in (o.velocity, o.disp, o.disp_inv):
            assert torch.equal(field, torch.zeros_like(field))
        torch.testing.assert_close(o.warped, o.moving, atol=1e-12, rtol=0)
        torch.testing.assert_close(o.fixed_inv_warped, o.fixed, atol=1e-12, rtol=0)
        if o.warped_energy is not None:
            torch.testing.assert_close(o.warped_energy, o.moving_energy, atol=1e-12, rtol=0)


def test_forward_symmetric_equals_two_directional_passes():
    net = model(config(SMALL)).double()
    a, b = images(SMALL, batch=2, dtype=torch.float64)
    with torch.no_grad():
        ab, ba = net.forward_symmetric(a, b, upto_level=3)
        ref_ab, ref_ba = net(a, b, upto_level=3), net(b, a, upto_level=3)
    for got, ref in ((ab, ref_ab), (ba, ref_ba)):
        for g, r in zip(got, ref):
            torch.testing.assert_close(g.disp, r.disp, atol=1e-10, rtol=0)
            torch.testing.assert_close(g.warped, r.warped, atol=1e-10, rtol=0)
            assert g.moving.shape[0] == 2


@pytest.mark.parametrize("gate", ["paper", "code"])
def test_gradients_reach_every_parameter_of_every_level(gate):
    net = model(config(SMALL, attention_gate=gate))
    moving, fixed = images(SMALL)
    top = net(moving, fixed)[-1]
    loss = (top.warped - top.fixed).square().mean() + top.disp.square().mean() + top.disp_inv.square().mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    for k in range(1, 5):
        assert any(p.grad.abs().sum() > 0 for p in net.level_modules(k).parameters()), k
