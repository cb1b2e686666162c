"""Loading checkpoints: containers, architecture inference and every way a file can be bad."""

from __future__ import annotations

import os
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from segment_anything import sam_model_registry

from napari_segany import CheckpointError, Predictor, load_model
from napari_segany.modeling import VIT_B, VIT_H, VIT_L
from napari_segany.weights.architecture import infer_config
from napari_segany.weights.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def state_dict(tiny_checkpoint):
    return torch.load(tiny_checkpoint, weights_only=True)


def _first_point_masks(model, image):
    predictor = Predictor(model)
    predictor.set_image(image)
    return predictor.predict(np.array([[40.0, 50.0]]), np.array([1]))[0]


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_official_architectures_are_recognised_from_shapes(name):
    with torch.device("meta"):
        reference = sam_model_registry[name]()
    config = infer_config(reference.state_dict())
    expected = {"vit_b": VIT_B, "vit_l": VIT_L, "vit_h": VIT_H}[name]
    assert config == expected


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"model": sd},
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"model_state": sd, "optimizer": {}},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {f"sam.{k}": v for k, v in sd.items()},
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},
    ],
    ids=["model", "state_dict", "model_state", "module-prefix", "sam-prefix", "nested"],
)
def test_common_containers_load_to_the_same_model(tmp_path, state_dict, tiny_model, wrap):
    path = tmp_path / "wrapped.pth"
    torch.save(wrap(state_dict), path)
    model = load_model(path, device="cpu")
    image = np.random.default_rng(1).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        _first_point_masks(model, image), _first_point_masks(tiny_model, image)
    )


def test_half_precision_checkpoint_loads_as_float32(tmp_path, state_dict):
    path = tmp_path / "fp16.pth"
    torch.save({k: v.half() for k, v in state_dict.items()}, path)
    model = load_model(path, device="cpu")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "sam_vit_b.pth"
    with pytest.raises(FileNotFoundError, match="sam_vit_b.pth"):
        load_model(path, device="cpu")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.*download it again"):
        load_model(path, device="cpu")


def test_truncated_download(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth.*truncated, corrupt"):
        load_model(path, device="cpu")


@pytest.mark.parametrize(
    "content",
    [b"<html>404 Not Found</html>", b"\x89PNG\r\n\x1a\n" + bytes(100)],
    ids=["html", "png"],
)
def test_file_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "download.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="download.pth is not a PyTorch checkpoint") as err:
        load_model(path, device="cpu")
    assert "could run code" not in str(err.value)  # not mistaken for a malicious pickle
    assert "failed download" in str(err.value)


class _Exploit:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", ["torch-zip", "plain-pickle"])
def test_malicious_pickle_is_refused_without_running_code(tmp_path, state_dict, fmt):
    marker = tmp_path / "pwned"
    payload = dict(state_dict)
    payload["evil"] = _Exploit(marker)
    path = tmp_path / "evil.pth"
    if fmt == "torch-zip":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(CheckpointError, match=r"evil\.pth.*(run code|not a checkpoint|corrupt)"):
        load_model(path, device="cpu")
    assert not marker.exists()


def test_state_dict_of_another_network(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict(), path
    )
    with pytest.raises(CheckpointError, match=r"resnet\.pth is not a SAM checkpoint"):
        load_model(path, device="cpu")


def test_missing_tensor_is_named(tmp_path, state_dict):
    broken = dict(state_dict)
    del broken["mask_decoder.iou_token.weight"]
    path = tmp_path / "missing.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"missing\.pth.*mask_decoder\.iou_token\.weight"):
        load_model(path, device="cpu")


def test_unexpected_tensor_is_named(tmp_path, state_dict):
    broken = dict(state_dict)
    broken["mask_decoder.extra_head.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"extra\.pth.*mask_decoder\.extra_head\.weight"):
        load_model(path, device="cpu")


def test_mismatched_shapes_name_the_tensors_and_their_shapes(tmp_path, state_dict):
    broken = dict(state_dict)
    broken["mask_decoder.iou_prediction_head.layers.1.weight"] = torch.zeros(7, 5)
    path = tmp_path / "shapes.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path, device="cpu")
    text = str(err.value)
    assert "shapes.pth" in text
    assert "mask_decoder.iou_prediction_head.layers.1.weight" in text
    assert "[7, 5]" in text and "[256, 256]" in text


@pytest.mark.parametrize(
    ("key", "tensor"),
    [
        ("image_encoder.patch_embed.proj.weight", torch.zeros(48, 768)),
        ("image_encoder.blocks.0.attn.rel_pos_h", torch.zeros(27)),
    ],
    ids=["patch-embed-2d", "rel-pos-1d"],
)
def test_a_tensor_of_the_wrong_rank_is_named_with_the_file(tmp_path, state_dict, key, tensor):
    broken = dict(state_dict)
    broken[key] = tensor
    path = tmp_path / "rank.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=rf"rank\.pth.*{key}.*shape \({tensor.shape[0]}"):
        load_model(path, device="cpu")


def test_a_vit_without_position_embedding_is_refused_unless_asked(tmp_path, state_dict):
    broken = {k: v for k, v in state_dict.items() if k != "image_encoder.pos_embed"}
    path = tmp_path / "nopos.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match="nopos.pth has no 'image_encoder.pos_embed'"):
        load_model(path, device="cpu")
    model = load_model(path, device="cpu", allow_missing_pos_embed=True)
    assert model.image_encoder.pos_embed is None


def test_tiny_architecture_read_from_shapes(state_dict):
    config = infer_config(state_dict)
    assert (config.embed_dim, config.depth, config.num_heads) == (48, 3, 3)
    assert config.global_attn_indexes == (1,)
    assert config.decoder_mlp_dim == 512
    assert replace(config, embed_dim=768) != config


def test_read_checkpoint_returns_plain_tensors(tiny_checkpoint):
    state = read_checkpoint(tiny_checkpoint)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert any(k.startswith("image_encoder.blocks.0.") for k in state)


def test_unknown_device_is_a_clear_error(tiny_checkpoint):
    with pytest.raises(ValueError, match="device"):
        load_model(tiny_checkpoint, device="tpu")
