"""Controls for "Segment everything": presets, the reference SAM's parameters, and Run."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

# name -> (label, tooltip, kind, minimum, maximum, step)
PARAMETERS: dict[str, tuple[str, str, str, float, float, float]] = {
    "points_per_side": (
        "Points per side",
        "Grid of N x N point prompts; more finds smaller objects, slower.",
        "int",
        2,
        128,
        1,
    ),
    "pred_iou_thresh": (
        "Predicted IoU ≥",
        "Keep masks SAM itself rates at least this good (0-1).",
        "float",
        0.0,
        1.0,
        0.01,
    ),
    "stability_score_thresh": (
        "Stability ≥",
        "Keep masks that barely change when the threshold moves (0-1).",
        "float",
        0.0,
        1.0,
        0.01,
    ),
    "box_nms_thresh": (
        "Box NMS IoU",
        "Drop a mask whose box overlaps a better one's by more than this.",
        "float",
        0.0,
        1.0,
        0.01,
    ),
    "crop_n_layers": (
        "Crop layers",
        "Also segment 2x2, 4x4, ... zoomed crops (finds small objects; slower).",
        "int",
        0,
        3,
        1,
    ),
    "min_mask_region_area": (
        "Min region area",
        "Remove islands and fill holes smaller than this many pixels.",
        "int",
        0,
        100000,
        10,
    ),
    "points_per_batch": (
        "Points per batch",
        "Prompts decoded at once; lower it if memory runs short.",
        "int",
        1,
        1024,
        8,
    ),
}

PRESETS: dict[str, dict[str, Any]] = {
    "Default (reference SAM)": {
        "points_per_side": 32, "pred_iou_thresh": 0.88, "stability_score_thresh": 0.95,
        "box_nms_thresh": 0.7, "crop_n_layers": 0, "min_mask_region_area": 0,
        "points_per_batch": 64,
    },
    "Fast (16 x 16 points)": {
        "points_per_side": 16, "pred_iou_thresh": 0.86, "stability_score_thresh": 0.92,
        "box_nms_thresh": 0.7, "crop_n_layers": 0, "min_mask_region_area": 0,
        "points_per_batch": 64,
    },
    "Small objects (1 crop layer)": {
        "points_per_side": 32, "pred_iou_thresh": 0.86, "stability_score_thresh": 0.92,
        "box_nms_thresh": 0.7, "crop_n_layers": 1, "min_mask_region_area": 25,
        "points_per_batch": 64,
    },
}  # fmt: skip
CUSTOM = "Custom"


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
        self.parameter_box = QWidget()
        pform = QFormLayout(self.parameter_box)
        self.fields: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for name, (label, tip, kind, lo, hi, step) in PARAMETERS.items():
            field = QSpinBox() if kind == "int" else QDoubleSpinBox()
            if kind == "float":
                field.setDecimals(2)
            field.setRange(lo, hi)
            field.setSingleStep(step)
            field.setToolTip(tip)
            field.valueChanged.connect(self._mark_custom)
            pform.addRow(label, field)
            self.fields[name] = field
        self.parameter_box.setVisible(False)
        layout.addWidget(self.parameter_box)

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
        return {name: field.value() for name, field in self.fields.items()}

    def _apply_preset(self, name: str) -> None:
        values = PRESETS.get(name)
        if values is None:
            return
        self._applying = True
        try:
            for key, value in values.items():
                self.fields[key].setValue(value)
        finally:
            self._applying = False

    def _mark_custom(self, *args) -> None:
        if not self._applying and self.preset_combo.currentText() != CUSTOM:
            self.preset_combo.blockSignals(True)
            self.preset_combo.setCurrentText(CUSTOM)
            self.preset_combo.blockSignals(False)

    def _show_parameters(self, shown: bool) -> None:
        self.parameter_box.setVisible(shown)
        self.toggle.setArrowType(_arrow(shown))


def _arrow(expanded: bool) -> Qt.ArrowType:
    return Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow
