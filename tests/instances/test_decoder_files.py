"""micro-sam's two file formats load (SAM plus ``<arch>_decoder.pt``, and one torch-em
training checkpoint), strictly, with messages that name the file and the tensors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from instance_checkpoints import NARROW, decoder_state
from napari_segany.errors import CheckpointError
from napari_segany.instances import (
    build_instance_decoder,
    decoder_file_beside,
    instance_decoder_of,
    load_sam_with_decoder,
    read_decoder_file,
    read_sam_and_decoder,
)
from napari_segany.modeling.instance_decoder import InstanceDecoder, InstanceDecoderConfig


@pytest.fixture
def separate_files(tmp_path, small_checkpoint):
    """micro-sam's BioImage.IO layout: vit_b.pt (plain SAM) and vit_b_decoder.pt beside it."""
    sam = tmp_path / "vit_b.pt"
    sam.write_bytes(small_checkpoint.read_bytes())
    torch.save(decoder_state(), tmp_path / "vit_b_decoder.pt")
    return sam


def test_a_decoder_file_beside_the_checkpoint_is_found_and_attached(separate_files):
    assert decoder_file_beside(separate_files) == separate_files.with_name("vit_b_decoder.pt")
    model = load_sam_with_decoder(separate_files, device="cpu")
    decoder = instance_decoder_of(model)
    assert decoder is not None and decoder.config == NARROW
    expected = decoder_state()
    for key, tensor in decoder.state_dict().items():
        torch.testing.assert_close(tensor, expected[key])


def test_a_plain_sam_checkpoint_has_no_decoder(small_checkpoint):
    assert decoder_file_beside(small_checkpoint) is None
    model = load_sam_with_decoder(small_checkpoint, device="cpu")
    assert instance_decoder_of(model) is None


def test_a_training_checkpoint_holds_both(tmp_path, small_checkpoint):
    sam = torch.load(small_checkpoint, weights_only=True)
    path = tmp_path / "best.pt"
    torch.save(
        {"model_state": {f"sam.{k}": v for k, v in sam.items()}, "decoder_state": decoder_state()},
        path,
    )
    sam_state, dec_state = read_sam_and_decoder(path)
    assert set(sam_state) == set(sam) and set(dec_state) == set(decoder_state())
    model = load_sam_with_decoder(path, device="cpu")
    assert instance_decoder_of(model).config == NARROW
    torch.testing.assert_close(model.image_encoder.patch_embed.proj.weight,
                               sam["image_encoder.patch_embed.proj.weight"])  # fmt: skip


def test_micro_sams_own_training_checkpoint_loads(bilinear_case):
    """The file micro-sam's classes wrote (TrainableSAM's "sam." keys, the UNETR's decoder)."""
    model = load_sam_with_decoder(bilinear_case.training_checkpoint, device="cpu")
    separate = load_sam_with_decoder(bilinear_case.checkpoint, bilinear_case.decoder_path, "cpu")
    ours, theirs = instance_decoder_of(model), instance_decoder_of(separate)
    assert ours.config == theirs.config == InstanceDecoderConfig(features=(128, 64, 32, 16))
    for key, tensor in ours.state_dict().items():
        torch.testing.assert_close(tensor, theirs.state_dict()[key])


def test_an_explicit_decoder_file_wins(separate_files, tmp_path):
    other = InstanceDecoderConfig(features=(16, 8, 4, 2), transposed=True)
    path = tmp_path / "other.pt"
    torch.save(decoder_state(other), path)
    model = load_sam_with_decoder(separate_files, decoder=path, device="cpu")
    assert instance_decoder_of(model).config == other


def test_the_architecture_is_read_off_the_tensors():
    for config in (InstanceDecoderConfig(), NARROW, InstanceDecoderConfig(transposed=True)):
        state = InstanceDecoder(config).state_dict()
        assert InstanceDecoderConfig.from_state_dict(state) == config
    transposed = InstanceDecoder(InstanceDecoderConfig(transposed=True)).state_dict()
    assert any(k.startswith("decoder.samplers.0.block.") for k in transposed)
    assert "deconv1.block.0.conv.weight" in InstanceDecoder().state_dict()  # torch-em's names


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    state = decoder_state()
    del state["deconv2.block.2.running_var"]
    state["extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as info:
        build_instance_decoder(state, "my_decoder.pt")
    text = str(info.value)
    assert "my_decoder.pt" in text and "deconv2.block.2.running_var" in text
    assert "extra.weight" in text


def test_a_tensor_of_the_wrong_shape_is_named():
    state = decoder_state()
    state["deconv3.block.1.block.weight"] = torch.zeros(8, 8, 5, 5)
    with pytest.raises(CheckpointError, match=r"deconv3\.block\.1\.block\.weight \(8, 8, 5, 5\)"):
        build_instance_decoder(state, "d.pt")


def test_a_sam_checkpoint_is_not_a_decoder_file(small_checkpoint):
    with pytest.raises(CheckpointError, match="SAM checkpoint, not an instance decoder"):
        read_decoder_file(small_checkpoint)
    with pytest.raises(CheckpointError, match="not an instance decoder"):
        build_instance_decoder({"foo.weight": torch.zeros(1)}, "foo.pt")


def test_a_decoder_of_another_model_is_refused(small_checkpoint, tmp_path):
    config = InstanceDecoderConfig(embed_dim=128, features=(16, 8, 4, 2))
    path = tmp_path / "d.pt"
    torch.save(decoder_state(config), path)
    with pytest.raises(ValueError, match="128-channel image embeddings"):
        load_sam_with_decoder(small_checkpoint, decoder=path, device="cpu")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil_decoder.pt"
    torch.save({"decoder_state": decoder_state(), "init": {"optimizer": pickle.Pickler}}, path)
    with pytest.raises(CheckpointError, match="Refused to load .*evil_decoder.pt"):
        read_decoder_file(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"<html>404</html>", "not a PyTorch decoder"),
        (b"PK\x03\x04junk", "corrupt"),
    ],
)
def test_broken_files_get_clear_messages(tmp_path, content, message):
    path = tmp_path / "vit_b_decoder.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_decoder_file(path)
    with pytest.raises(FileNotFoundError, match="Decoder file not found"):
        read_decoder_file(tmp_path / "missing.pt")


def test_the_decoder_follows_the_model_to_its_device_and_mode(separate_files):
    model = load_sam_with_decoder(separate_files, device="cpu")
    decoder = instance_decoder_of(model)
    assert not decoder.training
    model.train()
    assert decoder.training
    model.eval().to(torch.float32)
    out = decoder(torch.zeros(1, 256, 4, 4))
    assert out.shape == (1, 3, 64, 64) and bool(((out >= 0) & (out <= 1)).all())
    assert np.isfinite(out.detach().numpy()).all()


def test_whether_a_model_has_a_decoder_is_known_without_loading_it(
    separate_files, small_checkpoint, tmp_path, monkeypatch
):
    from napari_segany.weights import decoder_files, model_has_decoder, registry

    path = tmp_path / "best.pt"
    torch.save({"model_state": torch.load(small_checkpoint, weights_only=True),
                "decoder_state": decoder_state()}, path)  # fmt: skip
    assert model_has_decoder(separate_files)  # its decoder file beside it
    assert model_has_decoder(path)  # a training checkpoint's decoder_state
    assert not model_has_decoder(small_checkpoint)
    assert not model_has_decoder(tmp_path / "missing.pt")

    # A registered name is answered by the registry: nothing is read, nor downloaded, even
    # with a same-named file in the working folder.
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vit_b").write_bytes(separate_files.read_bytes())
    monkeypatch.setattr(decoder_files, "_load", lambda *a: pytest.fail("read a checkpoint"))
    monkeypatch.setattr(decoder_files, "decoder_file_beside", lambda *a: pytest.fail("looked"))
    assert model_has_decoder("vit_b_lm") and model_has_decoder("vit_t_em_organelles")
    assert not model_has_decoder("vit_b")


def test_a_model_without_a_decoder_is_refused_by_name(small_checkpoint):
    from napari_segany.weights.instance_decoder import require_instance_decoder

    model = load_sam_with_decoder(small_checkpoint, device="cpu")
    with pytest.raises(ValueError, match=r"The model 'plain\.pt' has no instance decoder"):
        require_instance_decoder(model, "plain.pt")
    with pytest.raises(ValueError, match="This model has no instance decoder.*vit_b_lm"):
        require_instance_decoder(model)
