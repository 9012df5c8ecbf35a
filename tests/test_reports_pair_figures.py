"""The pair reportlets say what they show: the pair, its Dice, a key of the outline colours, L / R; the Jacobian
and displacement over the fixed anatomy, the displacement colours scaled to the data (numpy, nibabel)."""

import re

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.bids.derivatives import PairFigurePaths
from smgic_pydra.reports.anatomy import canonical
from smgic_pydra.reports.pair_figures import displacement_figure, jacobian_figure, save_svg, write_pair_figures

pytest.importorskip("lxml")
pytest.importorskip("matplotlib")

ROW = {"method": "smgicnet", "fixed": "sub-01", "moving": "sub-02", "dice_mean": 0.71234, "folding_percent": 0.0}


def _pair():
    """A fixed and a moving ellipsoid 'brain' on 2 mm LPS grids (28 x 32 x 26), and a smooth forward warp (RAS mm):
    a 3 mm shift plus a bump of up to 12 mm, so the largest 1 % of |u| lie above its 99th percentile."""
    shape = (28, 32, 26)
    affine = np.diag([-2.0, -2.0, 2.0, 1.0])
    affine[:3, 3] = [27.0, 31.0, -25.0]
    ijk = np.indices(shape).astype(float)
    xyz = np.einsum("ij,j...->i...", affine[:3, :3], ijk) + affine[:3, 3, None, None, None]
    r = np.sqrt(((xyz / np.array([20.0, 24.0, 18.0])[:, None, None, None]) ** 2).sum(0))
    mask = r < 1
    fixed = (np.where(mask, 0.5 + 0.4 * (r < 0.6), 0.05)).astype(np.float32)
    moving = np.roll(fixed, 2, axis=0)
    bump = 12.0 * np.exp(-((xyz - np.array([5.0, 0.0, 0.0])[:, None, None, None]) ** 2).sum(0) / (2 * 6.0 ** 2))
    disp = np.stack([3.0 + bump, 0.5 * bump, np.zeros(shape)], axis=-1)
    return (nib.Nifti1Image(fixed, affine), mask, nib.Nifti1Image(moving, affine), np.roll(mask, 2, axis=0),
            (disp, affine))


def test_registration_reportlet_names_the_pair_dice_key_and_orientation(tmp_path):
    fixed, mask, moving, moving_mask, forward = _pair()
    paths = PairFigurePaths(registration=tmp_path / "reg.svg", jacobian=tmp_path / "jac.svg",
                            displacement=tmp_path / "disp.svg")
    write_pair_figures(paths, ROW, fixed, mask, moving, moving_mask, forward)
    svg = paths.registration.read_text()
    assert "after (SM-GICNet): sub-02 -&gt; sub-01, Dice 0.712" in svg
    assert "before (no registration): sub-02 -&gt; sub-01" in svg
    assert "fixed brain (sub-01)" in svg and "fixed white matter (sub-01)" in svg  # the key of the two outlines
    for plane, letters in (("z", "LR"), ("x", "PA"), ("y", "LR")):
        for letter in letters:  # in the before and the after view
            assert svg.count(f'id="orientation:{plane}:{letter}"') == 2
    for path in (paths.jacobian, paths.displacement):
        text = path.read_text()
        assert "SM-GICNet: sub-02 -&gt; sub-01  (Dice 0.712, folding 0.000 %)" in text
        assert 'id="orientation:z:L"' in text and 'id="orientation:x:A"' in text


def test_jacobian_and_displacement_over_the_anatomy_scaled_to_the_data(tmp_path):
    fixed, mask, _, _, (disp, affine) = _pair()
    field, brain = canonical(disp, affine), canonical(mask, affine).data
    anatomy = canonical(np.asarray(fixed.dataobj), affine)
    # independent of the figure code: nibabel's RAS view of the fixed image, the brain's centre voxel
    ras = np.asarray(nib.as_closest_canonical(fixed).dataobj)
    ras_mask = np.asarray(nib.as_closest_canonical(nib.Nifti1Image(mask.astype(np.uint8), affine)).dataobj) > 0
    centre = np.round(np.argwhere(ras_mask).mean(axis=0)).astype(int)
    axial = ras[:, :, centre[2]].T  # rows anterior, columns right (origin lower)
    expected_top = np.percentile(np.linalg.norm(disp[mask], axis=-1), 99)

    fig = displacement_figure(field, brain, "Displacement", anatomy)
    grey, colours = fig.axes[0].images[:2]
    np.testing.assert_array_equal(grey.get_array(), axial)
    assert grey.get_cmap().name == "gray" and colours.get_cmap().name == "magma"
    assert colours.norm.vmin == 0.0 and colours.norm.vmax == pytest.approx(expected_top, rel=1e-12)
    shown = np.ma.filled(colours.get_array().astype(float), np.nan)
    inside = ras_mask[:, :, centre[2]].T
    assert np.isnan(shown[~inside]).all() and np.isfinite(shown[inside]).all()
    bar = fig.axes[2].images[1].colorbar  # the one colour bar, of the last panel's image (same norm)
    assert np.nanmax(shown) > expected_top and bar.extend == "max"  # the top 1 % saturate, and the bar says so
    text = save_svg(fig, tmp_path / "disp.svg").read_text()
    assert f"99th percentile of |u| in the fixed brain: {expected_top:.1f} mm" in text

    fig = jacobian_figure(field, brain, "Jacobian", anatomy)
    grey, det = fig.axes[0].images[:2]
    np.testing.assert_array_equal(grey.get_array(), axial)
    shown = np.ma.filled(det.get_array().astype(float), np.nan)
    assert np.isnan(shown[~inside]).all() and np.isfinite(shown[inside]).all() and 0 < det.get_alpha() < 1
    assert re.search(r"det\(J\) in the brain", save_svg(fig, tmp_path / "jac.svg").read_text())


@pytest.mark.parametrize("flicker", [False, True])
def test_composed_svg_is_the_document_nireports_compose_view_writes(tmp_path, flicker):
    """Mosaics of two heights stacked, alone and with foreground panels over them: the same
    document as nireports' compose_view (the reference; its SVG objects are built with its vendored
    svgutils, which this library no longer imports), up to the random ids."""
    nireports_utils = pytest.importorskip("nireports.reportlets.utils")
    from nireports._vendored.svgutils.transform import fromstring

    from smgic_pydra.reports.anatomy import PLANES, composed_svg, mosaic_svg

    rng = np.random.default_rng(4)

    def panels(shape, label):
        images = {p: [rng.random(shape) * 100 for _ in range(3)] for p in PLANES}
        masks = {p: [np.pad(np.ones((4, 4), bool), ((2, shape[0] - 6), (3, shape[1] - 7)))] * 3 for p in PLANES}
        box = ((0, 0, 0), tuple(n - 1 for n in (*shape, shape[1])))
        return mosaic_svg(images, [(masks, "r")], (1.0, 1.0, 1.0), box, label, label, key=[("r", "key")])

    def same_ids(text):
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)

    from lxml import etree

    background = [panels((20, 16), "a"), panels((12, 24), "b")]
    foreground = [panels((20, 16), "c"), panels((12, 24), "d")] if flicker else []
    copies = [fromstring(etree.tostring(e).decode()) for e in background + foreground]
    reference = nireports_utils.compose_view(copies[:2], copies[2:], out_file=tmp_path / "reference.svg")
    ours = composed_svg(background, foreground)
    assert ("foreground-svg" in ours) == flicker and ours.count("translate(0, ") == 2 + 2 * flicker
    assert same_ids(ours) == same_ids((tmp_path / "reference.svg").read_text()), reference
