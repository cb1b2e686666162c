"""Full-size masks from low-res logits: the same pixels as upsampling with torch, then
thresholding."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_segany.decoding.upsampling import (
    LogitUpsampler,
    greater,
    threshold_upsampled_rows,
    upsample_columns,
)
from napari_segany.geometry import resized_shape


def _literal(low_res: torch.Tensor, factor: int, size: tuple[int, int]) -> torch.Tensor:
    """Upsample the whole grid with torch's bilinear kernel, crop, then compare."""
    b, m, h, w = low_res.shape
    up = F.interpolate(
        low_res.reshape(b * m, 1, h, w), scale_factor=factor, mode="bilinear",
        align_corners=False, recompute_scale_factor=False,
    )  # fmt: skip
    return up[:, 0, : size[0], : size[1]].reshape(b, m, *size)


def _agree_away_from_threshold(ours: torch.Tensor, logits: torch.Tensor, threshold: float):
    """Equal everywhere except where the literal logits lie within float rounding of the
    threshold (the two sum the same terms in another order)."""
    assert ours.dtype == torch.bool and ours.shape == logits.shape
    near = (logits - threshold).abs() <= 1e-5 * max(1.0, float(logits.abs().max()))
    differ = ours != (logits > threshold)
    assert not bool((differ & ~near).any())
    assert 0.0 < float(ours.float().mean()) < 1.0


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 5])
def test_upsampling_columns_matches_torch_bilinear(factor):
    x = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(factor))
    expected = F.interpolate(x, scale_factor=factor, mode="linear", align_corners=False)
    torch.testing.assert_close(upsample_columns(x, factor), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("factor", [2, 4, 5])
def test_thresholded_rows_match_upsampling_then_thresholding(factor):
    x = torch.randn(3, 9, 11, generator=torch.Generator().manual_seed(factor))
    up = F.interpolate(x.transpose(1, 2), scale_factor=factor, mode="linear", align_corners=False)
    _agree_away_from_threshold(threshold_upsampled_rows(x, factor, 0.25), up.transpose(1, 2), 0.25)


@pytest.mark.parametrize(
    "size",
    [(1024, 1024), (1024, 768), (683, 1024), (1024, 5), (2, 1024), (1021, 1019)],
)
def test_masks_of_an_image_the_model_saw_unresized(size):
    gen = torch.Generator().manual_seed(sum(size))
    # Smooth logits with a few objects, plus noise: edges of every orientation.
    low_res = F.avg_pool2d(torch.randn(2, 3, 256, 256, generator=gen), 5, 1, 2) * 5
    low_res += 0.3 * torch.randn(2, 3, 256, 256, generator=gen)
    upsampler = LogitUpsampler.build(256, 1024, size, size, torch.device("cpu"))
    assert upsampler.fused_factor == 4  # the fused path, not the general one
    masks = upsampler.masks(low_res, 0.0)
    assert masks.is_contiguous()
    _agree_away_from_threshold(masks, _literal(low_res, 4, size), 0.0)


def test_greater_writes_into_strided_views_like_torch():
    x = torch.randn(4, 6, 8)
    out = torch.zeros(4, 12, 8, dtype=torch.bool)
    view = out[:, ::2]  # every other row: a strided destination
    assert greater(x, 0.1, out=view) is view
    assert torch.equal(view, x > 0.1)
    assert not out[:, 1::2].any()  # the rows in between are untouched
    assert torch.equal(greater(x.double(), -0.2), x.double() > -0.2)
    # A dtype numpy cannot compare the same way goes through torch.
    assert torch.equal(greater(x.bfloat16(), 0.0), x.bfloat16() > 0.0)
    assert np.array_equal(greater(x, 0.0).numpy(), x.numpy() > 0.0)


def _postprocess(low: torch.Tensor, model_size: int, input_size, original_size) -> torch.Tensor:
    """The reference's post-processing, literally: (M, h, w) -> (M, H, W) float logits."""
    up = F.interpolate(low[:, None], (model_size, model_size), mode="bilinear", align_corners=False)
    up = up[..., : input_size[0], : input_size[1]]
    return F.interpolate(up, original_size, mode="bilinear", align_corners=False)[:, 0]


@pytest.mark.parametrize("shape", [(77, 123), (300, 41), (1031, 517), (256, 200)])
def test_logits_and_masks_equal_sams_postprocessing(shape):
    low = torch.randn(5, 64, 64, generator=torch.Generator().manual_seed(0))
    input_size = resized_shape(*shape, 256)
    expected = _postprocess(low, 256, input_size, shape)
    upsampler = LogitUpsampler.build(64, 256, input_size, shape, torch.device("cpu"))
    torch.testing.assert_close(upsampler.logits(low), expected, rtol=1e-5, atol=1e-5)
    _agree_away_from_threshold(upsampler.masks(low[None], 0.1)[0], expected, 0.1)
