"""The model, device and precision pickers, kept in step with the session that owns them.

The session alone decides what runs: the pickers ask it for a change, and show it when it
changes by itself (after a GPU runs out of memory it stays on the CPU, and the device picker
says so).
"""

from __future__ import annotations

import os

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import QComboBox, QFileDialog, QWidget

from ..annotation.session import InteractiveSession

IMPORT_ITEM = "Import checkpoint…"


class ModelChoice(QObject):
    """Fills the three pickers and passes the user's choices to the session."""

    changed = Signal()
    """The model, device or precision in use changed."""
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
        self._apply()

    @property
    def model_name(self) -> str | None:
        return self.model_combo.currentData()

    def fill_models(self) -> None:
        """List the registered and imported models, saying which must download first."""
        from ..weights import default_model, list_models

        combo = self.model_combo
        current = combo.currentData() if combo.count() else None
        combo.blockSignals(True)
        combo.clear()
        for info in list_models():
            label = info.name
            if not info.cached and info.url is not None and info.size:
                label = f"{info.name} · download {_size(info.size)}"
            combo.addItem(label, info.name)
            combo.setItemData(combo.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole)
        try:
            wanted = current or default_model()
        except ValueError as exc:
            show_warning(str(exc))
            wanted = combo.itemData(0)
        if combo.findData(wanted) < 0:
            label = os.path.basename(wanted) if os.path.sep in wanted else wanted
            combo.addItem(label, wanted)
        combo.addItem(IMPORT_ITEM, None)
        combo.setCurrentIndex(combo.findData(wanted))
        combo.blockSignals(False)

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
        """A model finished downloading: its entry no longer says it will."""
        self.fill_models()

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

    def _show_device(self, device: str) -> None:
        self.device_combo.blockSignals(True)
        if self.device_combo.findText(device) < 0:
            self.device_combo.addItem(device)
        self.device_combo.setCurrentText(device)
        self.device_combo.blockSignals(False)
        self.changed.emit()


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.0f} MB"
