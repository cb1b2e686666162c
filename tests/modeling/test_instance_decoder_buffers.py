"""The instance decoder's CPU inference pass, which writes its feature maps into reused buffers,
gives the maps of its plain pass (torch's own norms, concatenations and fresh tensors, as
autograd runs it), and leaves the caller's embedding as it was."""

from __future__ import annotations

import pytest
import torch

from napari_segany.modeling import workspace
from napari_segany.modeling.instance_decoder import InstanceDecoder, InstanceDecoderConfig
from napari_segany.modeling.workspace import Workspace


def random_decoder(transposed: bool, seed: int = 0) -> InstanceDecoder:
    torch.manual_seed(seed)
    decoder = InstanceDecoder(InstanceDecoderConfig(features=(32, 16, 8, 4), transposed=transposed))
    with torch.no_grad():
        for key, tensor in decoder.state_dict().items():
            if key.endswith(("bias", "weight")) and tensor.ndim == 1:
                tensor.copy_(torch.randn(tensor.shape) * 0.3 + (1.0 if "weight" in key else 0.0))
    return decoder.eval()


def plain_maps(decoder: InstanceDecoder, embedding: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():  # autograd's pass: no buffer reuse
        return decoder(embedding).detach()


@pytest.mark.parametrize("transposed", [False, True], ids=["bilinear", "transposed"])
def test_the_reusing_pass_gives_the_plain_pass_maps(transposed):
    decoder = random_decoder(transposed)
    embedding = torch.randn(2, 256, 8, 8) * 2 + 0.5  # two images: each normalised by its own
    kept = embedding.clone()
    with torch.inference_mode():
        maps = decoder(embedding)
        first = decoder(embedding[:1])
    assert torch.equal(embedding, kept), "the caller's embedding must not change"
    expected = plain_maps(decoder, embedding)
    assert maps.shape == expected.shape == (2, 3, 128, 128)
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(maps[:1], first, atol=1e-6, rtol=0)
    assert (maps[0] - maps[1]).abs().max() > 0.05  # the two images give different maps


def test_without_onednns_fused_convolution_the_maps_are_the_same(monkeypatch):
    decoder = random_decoder(False, seed=3)
    embedding = torch.randn(1, 256, 8, 8)
    with torch.inference_mode():
        fused = decoder(embedding)
        monkeypatch.setattr(workspace, "_FUSED", [False])
        unfused = decoder(embedding)
    torch.testing.assert_close(fused, unfused, atol=1e-5, rtol=0)
    torch.testing.assert_close(fused, plain_maps(decoder, embedding), atol=1e-5, rtol=0)


def test_bf16_autocast_and_training_take_the_plain_pass():
    decoder = random_decoder(False)
    embedding = torch.randn(1, 256, 8, 8)
    with torch.inference_mode():
        assert workspace.reuses_buffers(embedding)
        reused = decoder(embedding)
        with torch.autocast("cpu", torch.bfloat16):
            assert not workspace.reuses_buffers(embedding)
            reduced = decoder(embedding)
        assert reduced.dtype == torch.bfloat16
        torch.testing.assert_close(reduced.float(), reused, atol=0.05, rtol=0)
        assert not workspace.reuses_buffers(embedding.double())
    assert not workspace.reuses_buffers(embedding)  # autograd records the pass


def test_a_buffer_given_back_serves_the_next_map_that_fits():
    ws = Workspace()
    big = ws.take((1, 8, 4, 4))
    assert big.is_contiguous(memory_format=torch.channels_last)
    ws.give(big)
    small = ws.take((1, 4, 4, 4))
    assert small.data_ptr() == big.data_ptr()
    other = ws.take((1, 8, 4, 4))  # the only free buffer is lent: a new one
    assert other.data_ptr() != small.data_ptr()


def test_only_whole_lent_buffers_are_taken_back():
    ws = Workspace()
    x = ws.take((2, 8, 4, 4))
    assert ws.owns(x)
    assert not ws.owns(x[:1]) and not ws.owns(x[:, :4]) and not ws.owns(torch.empty(2, 8, 4, 4))
    ws.give(x[:1], x[:, :4], torch.empty(1))  # parts and strangers: nothing is freed
    assert ws.take((2, 8, 4, 4)).data_ptr() != x.data_ptr()
    ws.give(x)
    assert ws.take((2, 8, 4, 4)).data_ptr() == x.data_ptr()


def test_a_kept_workspace_carries_nothing_from_one_embedding_to_the_next():
    decoder = random_decoder(False, seed=5)
    first, second = torch.randn(1, 256, 8, 8), torch.randn(1, 256, 8, 8) * 3 - 1
    ws = Workspace()
    with torch.inference_mode():
        decoder(first, ws)
        reused = decoder(second, ws)
        alone = decoder(second)
    assert ws.lent == 0  # every buffer back, ready for the next tile
    torch.testing.assert_close(reused, alone, atol=0, rtol=0)
