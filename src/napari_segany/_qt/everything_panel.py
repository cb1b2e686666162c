"""Controls for automatic segmentation: the method, its parameters, and Run.

Every model segments everything (SAM's grid of prompts, with presets). A model with an
instance decoder (micro-sam's) also offers instance segmentation from the decoder's maps (AIS,
the default then: a fraction of a second once the slice is encoded) and from prompts at the
maps' seeds (APG). The parameter forms are built with magicgui from the parameter tables
(:mod:`napari_segany.automatic.params`, :mod:`napari_segany.instances.params`): labels,
ranges, steps and help come from there, so the panel, the API and the command line agree.
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
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..automatic.params import PRESETS, SETTINGS, Setting, defaults, preset
from ..instances import params as instance_params

CUSTOM = "Custom"
AIS, APG, AMG = "ais", "apg", "amg"
METHODS = {
    AIS: (
        "Instances (AIS)",
        "Segment instances",
        "Every object in one pass of the model's instance decoder over the slice's embedding "
        "(the one clicks use), split by a watershed: a fraction of a second once encoded.",
    ),
    APG: (
        "Instances from prompts (APG)",
        "Segment instances from prompts",
        "SAM decodes a point prompt at the centre of each object the instance decoder finds; "
        "overlapping masks are removed. Slower than AIS, often sharper edges.",
    ),
    AMG: (
        "Segment everything",
        "Segment everything",
        "Prompt the displayed slice with a grid of points and keep the confident, stable, "
        "non-overlapping masks (SAM's automatic mode). Runs in the background; Cancel stops it.",
    ),
}


def _field(name: str, spec: Setting, default: Any) -> SpinBox | FloatSpinBox:
    kind = SpinBox if isinstance(default, int) else FloatSpinBox
    help_text = spec.help[0].upper() + spec.help[1:] + "."
    return kind(
        value=default, min=spec.minimum, max=spec.maximum, step=spec.step, name=name,
        label=spec.label, tooltip=help_text,
    )  # fmt: skip


def _instance_fields(mode: str) -> dict[str, SpinBox | FloatSpinBox]:
    given = instance_params.defaults(mode)
    return {
        name: _field(name, spec, given[name])
        for name, spec in instance_params.settings(mode).items()
        if spec.in_panel
    }


class EverythingPanel(QGroupBox):
    """Automatic segmentation settings; the parameters sit in a collapsible section."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Automatic segmentation", parent)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.mode_combo = QComboBox()
        self.mode_combo.currentIndexChanged.connect(self._show_mode)
        form.addRow("Method", self.mode_combo)
        self.preset_row = QWidget()
        row = QHBoxLayout(self.preset_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Preset"))
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*PRESETS, CUSTOM])
        self.preset_combo.setToolTip(
            "Parameter sets: the reference SAM's defaults, a faster coarse grid, or an extra "
            "crop layer for small objects. Editing a parameter switches to Custom."
        )
        self.preset_combo.currentTextChanged.connect(self._apply_preset)
        row.addWidget(self.preset_combo, 1)
        form.addRow(self.preset_row)
        self.only_unlabeled_check = QCheckBox("Only unlabeled regions")
        self.only_unlabeled_check.setToolTip(
            "Keep the 'Commit into' labels layer's objects untouched and add, as new ids, only "
            "objects that lie mostly in its unlabeled pixels. Off: results go to a new layer."
        )
        form.addRow(self.only_unlabeled_check)
        layout.addLayout(form)

        self.toggle = QToolButton()
        self.toggle.setText("Parameters")
        self.toggle.setCheckable(True)
        self.toggle.setArrowType(_arrow(False))
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setToolTip("Show or hide the parameters of the chosen method.")
        self.toggle.toggled.connect(self._show_mode)
        layout.addWidget(self.toggle)
        self.fields = {name: _field(name, spec, defaults()[name]) for name, spec in
                       SETTINGS.items() if spec.in_panel}  # fmt: skip
        self.mode_fields = {AIS: _instance_fields(AIS), APG: _instance_fields(APG)}
        self.mode_fields[AMG] = self.fields
        self.parameters = {
            m: Container(widgets=list(f.values())) for m, f in self.mode_fields.items()
        }
        for field in self.fields.values():
            field.changed.connect(self._mark_custom)
        for container in self.parameters.values():
            container.native.setVisible(False)
            layout.addWidget(container.native)

        self.run_button = QPushButton()
        layout.addWidget(self.run_button)
        self._applying = False
        self._apply_preset(self.preset_combo.currentText())
        self.set_decoder_available(False)

    # ---- what runs ---------------------------------------------------------------------------

    def mode(self) -> str:
        """``ais``, ``apg`` or ``amg`` (segment everything)."""
        return self.mode_combo.currentData() or AMG

    def params(self, mode: str = AMG) -> dict[str, Any]:
        """The parameters of ``mode``: for ``generate_masks`` (amg) or ``segment_instances``."""
        return {name: field.value for name, field in self.mode_fields[mode].items()}

    def set_decoder_available(self, available: bool, models: list[str] | None = None) -> None:
        """Offer AIS and APG (AIS selected when they appear) for a model with an instance
        decoder; only segment everything otherwise, saying which ``models`` add AIS."""
        if available:
            tip = "How to find every object on the displayed slice."
        else:
            names = ", ".join(models or []) or "micro-sam's"
            tip = (
                "This model has no instance decoder, so it can only segment everything. "
                f"Models with one add instance segmentation (AIS, APG): {names}."
            )
        self.mode_combo.setToolTip(tip)
        offered = [AIS, APG, AMG] if available else [AMG]
        if [self.mode_combo.itemData(i) for i in range(self.mode_combo.count())] == offered:
            return
        self.mode_combo.blockSignals(True)
        self.mode_combo.clear()
        for mode in offered:
            self.mode_combo.addItem(METHODS[mode][0], mode)
            self.mode_combo.setItemData(
                self.mode_combo.count() - 1, METHODS[mode][2], Qt.ItemDataRole.ToolTipRole
            )
        self.mode_combo.setCurrentIndex(0)
        self.mode_combo.blockSignals(False)
        self._show_mode()

    # ---- showing -----------------------------------------------------------------------------

    def _show_mode(self, *args) -> None:
        mode = self.mode()
        self.preset_row.setVisible(mode == AMG)
        for name, container in self.parameters.items():
            container.native.setVisible(self.toggle.isChecked() and name == mode)
        self.toggle.setArrowType(_arrow(self.toggle.isChecked()))
        _, button, tip = METHODS[mode]
        self.run_button.setText(button)
        self.run_button.setToolTip(tip)

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


def _arrow(expanded: bool) -> Qt.ArrowType:
    return Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow
