"""The model work behind the widget: Cancel, closing napari, busy messages, the GPU fallback,
the precision ``auto`` picks, and the record of committed objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from widget_helpers import click, drag, press, textured_image, wait_for_preview, wait_idle

from napari_segany._qt.keys import KEYS

pytestmark = pytest.mark.gui


def _messages(notifications) -> str:
    return "\n".join(str(n.message) for n in notifications)


def test_cancel_stops_an_encoding_between_blocks(open_widget, qtbot, encoder_gate, tiny_model):
    viewer, widget = open_widget(textured_image())
    widget.encode_button.click()
    encoder_gate.wait_reached(qtbot)
    qtbot.waitUntil(lambda: not widget.cancel_button.isHidden(), timeout=5000)
    widget.cancel_button.click()
    encoder_gate.release()
    wait_idle(qtbot, widget)
    depth = len(tiny_model.image_encoder.blocks)
    assert encoder_gate.blocks_run < depth  # it stopped, it did not finish
    assert len(widget.session.cache) == 0
    assert "encoding cancelled" in widget.status_label.text()
    assert widget.progress_bar.isHidden()
    click(viewer, 60, 70)  # and the next click encodes afresh
    assert wait_for_preview(qtbot, widget).any()


def test_messages_while_encoding_say_wait(open_widget, qtbot, encoder_gate, notifications):
    viewer, widget = open_widget(textured_image())
    click(viewer, 60, 70)
    encoder_gate.wait_reached(qtbot)
    press(viewer, KEYS["commit"][0])
    press(viewer, KEYS["next_candidate"][0])
    text = _messages(notifications)
    assert "Encoding…: wait, then commit." in text
    assert "Encoding…: wait until it is done." in text
    assert "Nothing to commit" not in text
    encoder_gate.release()
    wait_for_preview(qtbot, widget)


def test_an_empty_box_mask_is_said_and_ids_stay_contiguous(open_widget, qtbot, monkeypatch):
    from napari_segany.annotation.session import InteractiveSession

    original = InteractiveSession.predict

    def with_an_empty_mask(self, *args, **kwargs):  # SAM's answer for the second box
        prediction = original(self, *args, **kwargs)
        if prediction.n_objects > 1:
            prediction.masks[1] = False
        return prediction

    monkeypatch.setattr(InteractiveSession, "predict", with_an_empty_mask)
    viewer, widget = open_widget(textured_image(seed=2))
    widget.set_tool("box")
    for corner in ((5, 5), (5, 80), (60, 5), (60, 80)):
        drag(viewer, corner, (corner[0] + 40, corner[1] + 50))
    wait_for_preview(qtbot, widget)
    wait_idle(qtbot, widget)
    assert "1 box(es) gave an empty mask" in widget.candidate_label.text()
    widget.commit()
    assert set(np.unique(viewer.layers["img labels"].data)) == {0, 1, 2, 3}
    assert "ids 1–3" in widget.status_label.text()


def test_a_gpu_out_of_memory_moves_to_the_cpu_and_stays_there(
    open_widget, qtbot, monkeypatch, notifications
):
    """A simulated CUDA out-of-memory error at the first encoding: the widget says so, the
    device picker shows the CPU, and the next clicks decode on the CPU with no reload."""
    from napari_segany import Predictor
    from napari_segany.annotation.session import InteractiveSession

    on_gpu = {"yes": True}
    monkeypatch.setattr(
        Predictor, "device", property(lambda self: torch.device("cuda" if on_gpu["yes"] else "cpu"))
    )
    loads = []
    original_ensure = InteractiveSession.ensure_model

    def ensure_model(self, progress=None):
        if self.predictor is None:
            loads.append(self.device)
        predictor = original_ensure(self, progress)
        if not getattr(predictor.model, "_watched", False):
            original_to = predictor.model.to

            def to(device, *args, **kwargs):
                on_gpu["yes"] = False
                return original_to(device, *args, **kwargs)

            predictor.model.to = to
            predictor.model._watched = True
        return predictor

    monkeypatch.setattr(InteractiveSession, "ensure_model", ensure_model)
    original_set_image = Predictor.set_image

    def set_image(self, *args, **kwargs):
        if on_gpu["yes"]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4 GiB")
        return original_set_image(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "set_image", set_image)
    viewer, widget = open_widget(textured_image(seed=3))
    click(viewer, 60, 70)
    first = wait_for_preview(qtbot, widget).copy()
    assert "continuing on the CPU" in _messages(notifications)
    assert widget.device_combo.currentText() == "cpu"
    click(viewer, 20, 30)
    wait_idle(qtbot, widget)
    assert widget.preview_objects() is not None and not np.array_equal(
        widget.preview_objects(), first
    )
    assert loads == ["auto"]  # loaded once, never again
    assert widget.session.device == "cpu" and "on cpu" in widget.status_label.text()


@pytest.mark.parametrize("fast_bf16", [True, False], ids=["avx512-bf16", "avx2"])
def test_auto_precision_in_the_widget_and_the_store_agree(
    open_widget, qtbot, tiny_checkpoint, monkeypatch, fast_bf16
):
    """Whatever ``auto`` resolves to here, the embedding the store holds for it is found."""
    import napari_segany.precision as precision
    from napari_segany import EmbeddingStore, Predictor, load_model
    from napari_segany.embeddings import plane_embedding_key

    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: fast_bf16)
    name = "bf16" if fast_bf16 else "fp32"
    image, other = textured_image(seed=13), textured_image(seed=14)
    model = load_model(tiny_checkpoint, device="cpu")
    assert Predictor(model, precision="auto").precision_name == name
    # Encoded in fp32 (emulated bf16 is slow on CPUs without it): the key is what is tested.
    predictor = Predictor(model, precision="fp32")
    predictor.set_image(other)
    key = plane_embedding_key(image, (0.0, 255.0), str(tiny_checkpoint), name)
    EmbeddingStore().save(key, predictor.get_embedding_state())
    viewer, widget = open_widget(image, precision="auto")
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    assert "precomputed" in widget.status_label.text()
    assert next(iter(widget.session.cache._items))[3] == name


def test_the_record_of_committed_objects_is_shown_and_saved(
    open_widget, qtbot, tmp_path, monkeypatch
):
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = open_widget(textured_image(seed=4))
    assert widget.record_label.text() == "No objects committed yet"
    click(viewer, 60, 70)
    click(viewer, 70, 80)
    wait_for_preview(qtbot, widget)
    widget.commit()
    widget.set_tool("box")
    drag(viewer, (5, 5), (40, 40))
    wait_for_preview(qtbot, widget)
    widget.commit()
    assert widget.record_label.text().startswith("2 objects ·")
    assert widget.undo_button.isEnabled()
    assert "prompts per object" in widget.record_label.text()
    out = tmp_path / "record.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    widget.save_record_button.click()
    lines = out.read_text().splitlines()
    assert lines[0] == "id,slice,seconds,prompts,source"
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    assert [line.split(",")[-1] for line in lines[1:]] == ["click", "box"]
    assert lines[1].split(",")[3] == "2"  # two clicks for the first object
    widget.undo_button.click()
    assert widget.record_label.text().startswith("1 object ·")


def test_closing_napari_while_it_encodes_prints_nothing(tiny_checkpoint, tmp_path):
    """A real session in its own process: open, click, close the window mid-encoding."""
    script = textwrap.dedent(
        f"""
        import os, time
        os.environ["NAPARI_SEGANY_MODEL"] = {str(tiny_checkpoint)!r}
        os.environ["NAPARI_SEGANY_CACHE_DIR"] = {str(tmp_path / "cache")!r}
        import numpy as np, napari
        from qtpy.QtWidgets import QApplication
        from napari_segany.annotation.session import InteractiveSession
        original = InteractiveSession.ensure_model
        def slow_model(self, progress=None):  # each encoder block takes a second
            predictor = original(self, progress)
            for block in predictor.model.image_encoder.blocks:
                block.register_forward_hook(lambda *_: time.sleep(1.0))
            return predictor
        InteractiveSession.ensure_model = slow_model
        viewer = napari.Viewer(show=False)
        viewer.add_image(np.random.default_rng(0).integers(0, 255, (300, 400), np.uint8))
        _, widget = viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
        app = QApplication.instance()
        widget.encode_button.click()
        end = time.time() + 30
        while not widget.jobs.busy and time.time() < end:
            app.processEvents()
        time.sleep(0.5)  # the encoder is in its first blocks
        print("busy at close:", widget.jobs.busy)
        viewer.close()
        for _ in range(500):  # the worker finishes after the window is gone
            app.processEvents()
            time.sleep(0.01)
        print("closed")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "busy at close: True" in done.stdout and done.stdout.strip().endswith("closed")
    noise = [line for line in done.stderr.splitlines() if "Error" in line or "Traceback" in line]
    assert not noise, done.stderr
