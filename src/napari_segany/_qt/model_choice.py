"""The model, device and precision pickers, kept in step with the session that owns them.

The session alone decides what runs: the pickers ask it for a change, and show it when it
changes by itself (after a GPU runs out of memory it stays on the CPU, and the device picker
says so). The model picker groups the models by what they are for (general, light and electron
microscopy, histopathology, medical imaging, imported), under a heading per group, and says
which models have an instance decoder (automatic instance segmentation).
"""

from __future__ import annotations

import os

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtGui import QStandardItemModel
from qtpy.QtWidgets import QComboBox, QFileDialog, QWidget

from ..annotation.session import InteractiveSession

IMPORT_ITEM = "Import checkpoint…"


class ModelChoice(QObject):
    """Fills the three pickers and passes the user's choices to the session."""

    changed = Signal()
    """The model, device or precision in use changed."""
    decoder_changed = Signal(bool)
    """Whether the chosen model has an instance decoder (AIS and APG) changed."""
    _device_moved = Signal(str)  # from a worker thread, queued to this one

    def __init__(
        self,
        session: InteractiveSession,
        model_combo: QComboBox,
        device_combo: QComboBox,
        precision_combo: QComboBox,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        from ..devices import available_devices

        self.session = session
        self.model_combo = model_combo
        self.device_combo = device_combo
        self.precision_combo = precision_combo
        self._parent = parent
        device_combo.addItems(["auto", *available_devices()])
        self.fill_models()
        model_combo.activated.connect(self._on_model_activated)
        device_combo.currentTextChanged.connect(self._apply)
        precision_combo.currentTextChanged.connect(self._apply)
        session.device_changed.connect(self._device_moved.emit)
        self._device_moved.connect(self._show_device)
        self._decoder: bool | None = None
        self._apply()

    @property
    def model_name(self) -> str | None:
        return self.model_combo.currentData()

    def fill_models(self) -> None:
        """List the registered and imported models under a heading per domain, saying which
        must download first and, in the tooltip, what each is for."""
        from ..weights import default_model, list_models

        combo = self.model_combo
        current = combo.currentData() if combo.count() else None
        combo.blockSignals(True)
        combo.clear()
        domain = None
        for info in list_models():
            if info.domain != domain:
                domain = info.domain
                _add_heading(combo, domain)
            label = info.name
            if not info.cached and info.url is not None:
                label += f" · download {_size(info.size)}" if info.size else " · download"
            combo.addItem(label, info.name)
            tip = info.description
            if info.has_decoder:
                tip += ". Has an instance decoder: automatic instance segmentation (AIS, APG)"
            combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        try:
            wanted = current or default_model()
        except ValueError as exc:
            show_warning(str(exc))
            wanted = next(combo.itemData(i) for i in range(combo.count()) if combo.itemData(i))
        if combo.findData(wanted) < 0:
            _add_heading(combo, "Checkpoint file")
            label = os.path.basename(wanted) if os.path.sep in wanted else wanted
            combo.addItem(label, wanted)
        combo.addItem(IMPORT_ITEM, None)
        combo.setCurrentIndex(combo.findData(wanted))
        combo.blockSignals(False)

    def has_decoder(self) -> bool:
        """Whether the chosen model has an instance decoder: the loaded model's, else what
        :func:`~napari_segany.weights.model_has_decoder` learns without loading it (the
        registry for a name; for a path, a decoder file beside it or a training checkpoint's
        ``decoder_state``, read from the file's structure in milliseconds)."""
        from ..weights import model_has_decoder
        from ..weights.instance_decoder import instance_decoder_of

        name = self.model_name
        if name is None:
            return False
        predictor = self.session.predictor
        if predictor is not None and self.session.model_name == name:
            return instance_decoder_of(predictor.model) is not None
        try:
            return model_has_decoder(name)
        except (OSError, ValueError):  # unreadable: loading it will say what is wrong
            return False

    def decoder_models(self) -> list[str]:
        """The registered models with an instance decoder, for the widget's hints."""
        from ..weights import list_models

        return [m.name for m in list_models() if m.has_decoder]

    def import_checkpoint(self, path: str) -> str | None:
        """Copy a checkpoint file into the model cache and select it."""
        from ..weights import import_checkpoint

        try:
            name = import_checkpoint(path)
        except (OSError, ValueError) as exc:
            show_error(f"Could not import {os.path.basename(path)}: {exc}")
            self.fill_models()
            return None
        self.fill_models()
        self.model_combo.setCurrentIndex(self.model_combo.findData(name))
        show_info(f"Imported {os.path.basename(path)} as model {name!r}.")
        self._apply()
        return name

    def model_arrived(self) -> None:
        """A model finished downloading: its entry no longer says it will, and whether it has
        a decoder is known for sure."""
        self.fill_models()
        self._check_decoder()

    def _on_model_activated(self, index: int) -> None:
        if self.model_combo.itemData(index) is None and self.model_combo.itemText(index) == (
            IMPORT_ITEM
        ):
            path, _ = QFileDialog.getOpenFileName(
                self._parent, "Import a SAM checkpoint", "",
                "PyTorch checkpoints (*.pth *.pt *.bin);;All files (*)",
            )  # fmt: skip
            if not path:
                self.fill_models()
                return
            self.import_checkpoint(path)
            return
        self._apply()

    def _apply(self, *args) -> None:
        name = self.model_name
        if name is None:
            return
        if self.session.select(
            name, self.device_combo.currentText(), self.precision_combo.currentText()
        ):
            self.changed.emit()
        self._check_decoder()

    def _check_decoder(self) -> None:
        has = self.has_decoder()
        if has != self._decoder:
            self._decoder = has
            self.decoder_changed.emit(has)

    def _show_device(self, device: str) -> None:
        self.device_combo.blockSignals(True)
        if self.device_combo.findText(device) < 0:
            self.device_combo.addItem(device)
        self.device_combo.setCurrentText(device)
        self.device_combo.blockSignals(False)
        self.changed.emit()


def _add_heading(combo: QComboBox, domain: str) -> None:
    """A group heading: shown in bold, neither selectable nor a model."""
    combo.addItem(domain, None)
    model = combo.model()  # a QComboBox's own model is a QStandardItemModel
    item = model.item(combo.count() - 1) if isinstance(model, QStandardItemModel) else None
    if item is not None:
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = item.font()
        font.setBold(True)
        item.setFont(font)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.0f} MB"
