"""Controls for "Segment everything": presets, the reference SAM's parameters, and Run.

The parameter form is built from :mod:`napari_segany.automatic.params`, the one table of
segment-everything's settings, with magicgui's widgets: labels, ranges, steps and help come
from there, so the panel, the API and the command line cannot disagree.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container, FloatSpinBox, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..automatic.params import PRESETS, SETTINGS, defaults, preset

CUSTOM = "Custom"


def _field(name: str) -> SpinBox | FloatSpinBox:
    spec = SETTINGS[name]
    default = defaults()[name]
    kind = SpinBox if isinstance(default, int) else FloatSpinBox
    help_text = spec.help[0].upper() + spec.help[1:] + "."
    return kind(
        value=default, min=spec.minimum, max=spec.maximum, step=spec.step, name=name,
        label=spec.label, tooltip=help_text,
    )  # fmt: skip


class EverythingPanel(QGroupBox):
    """Segment-everything settings; the parameters sit in a collapsible section."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Segment everything", parent)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*PRESETS, CUSTOM])
        self.preset_combo.setToolTip(
            "Parameter sets: the reference SAM's defaults, a faster coarse grid, or an extra "
            "crop layer for small objects. Editing a parameter switches to Custom."
        )
        self.preset_combo.currentTextChanged.connect(self._apply_preset)
        form.addRow("Preset", self.preset_combo)
        self.only_unlabeled_check = QCheckBox("Only unlabeled regions")
        self.only_unlabeled_check.setToolTip(
            "Keep the 'Commit into' labels layer's objects untouched and add, as new ids, only "
            "masks that lie mostly in its unlabeled pixels. Off: results go to a new layer."
        )
        form.addRow(self.only_unlabeled_check)
        layout.addLayout(form)

        self.toggle = QToolButton()
        self.toggle.setText("Parameters")
        self.toggle.setCheckable(True)
        self.toggle.setArrowType(_arrow(False))
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setToolTip("Show or hide the segment-everything parameters.")
        self.toggle.toggled.connect(self._show_parameters)
        layout.addWidget(self.toggle)
        self.fields = {name: _field(name) for name, spec in SETTINGS.items() if spec.in_panel}
        self.parameters = Container(widgets=list(self.fields.values()))
        for field in self.fields.values():
            field.changed.connect(self._mark_custom)
        self.parameters.native.setVisible(False)
        layout.addWidget(self.parameters.native)

        self.run_button = QPushButton("Segment everything")
        self.run_button.setToolTip(
            "Prompt the displayed slice with a grid of points and keep the confident, stable, "
            "non-overlapping masks (SAM's automatic mode). Runs in the background; Cancel stops it."
        )
        layout.addWidget(self.run_button)
        self._applying = False
        self._apply_preset(self.preset_combo.currentText())

    def params(self) -> dict[str, Any]:
        """The parameters for ``generate_masks``."""
        return {name: field.value for name, field in self.fields.items()}

    def _apply_preset(self, name: str) -> None:
        if name not in PRESETS:
            return
        self._applying = True
        try:
            for key, value in preset(name).items():
                if key in self.fields:
                    self.fields[key].value = value
        finally:
            self._applying = False

    def _mark_custom(self, *args) -> None:
        if not self._applying and self.preset_combo.currentText() != CUSTOM:
            self.preset_combo.blockSignals(True)
            self.preset_combo.setCurrentText(CUSTOM)
            self.preset_combo.blockSignals(False)

    def _show_parameters(self, shown: bool) -> None:
        self.parameters.native.setVisible(shown)
        self.toggle.setArrowType(_arrow(shown))


def _arrow(expanded: bool) -> Qt.ArrowType:
    return Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow
