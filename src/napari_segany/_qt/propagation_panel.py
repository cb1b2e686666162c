"""Controls of "Propagate": carry an object through the slices of a volume or a time-lapse.

The defaults are those of micro-sam's annotator, so an object propagates as users of micro-sam
know it: one point from the previous mask, a 0.5 IoU stop, boxes grown by 5 %.
"""

from __future__ import annotations

from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QWidget,
)

from ..volumes import PROJECTIONS
from ..volumes.settings import ANNOTATOR_DEFAULTS as DEFAULTS
from .keys import KEYS
from .panels import flowing_label

VOLUME, TIME_LAPSE = "volume", "time-lapse"

_PROJECTION_HELP = {
    "single_point": "one positive point at the previous mask's deepest pixel",
    "points": "positive points from the previous mask's interior, negative ones around it",
    "box": "the previous mask's bounding box",
    "mask": "the previous mask and its box",
    "points_and_mask": "the previous mask with points from it",
}


class PropagationPanel(QGroupBox):
    """Mode, projection, IoU threshold, box extension, motion smoothing; Propagate, Propagate
    all and Discard; a line saying what the last propagation reached."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Propagate through slices", parent)
        form = QFormLayout(self)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Volume: up and down through z", VOLUME)
        self.mode_combo.addItem("Time-lapse: forward through t", TIME_LAPSE)
        self.mode_combo.setToolTip(
            "Volume: from the seeded slices up and down the slider just above the image plane "
            "(z). Time-lapse: forward from the first seeded frame along the first slider (t), "
            "following the object's motion."
        )
        form.addRow("Through", self.mode_combo)

        self.projection_combo = QComboBox()
        for name in PROJECTIONS:
            self.projection_combo.addItem(name, name)
            index = self.projection_combo.count() - 1
            self.projection_combo.setItemData(index, _PROJECTION_HELP[name], _tooltip_role())
        self.projection_combo.setCurrentText(DEFAULTS["projection"])
        self.projection_combo.setToolTip(
            "Which prompts each slice gets from the mask of the slice before it."
        )
        form.addRow("Prompts from", self.projection_combo)

        self.iou_spin = _spin(0.0, 1.0, 0.05, DEFAULTS["iou_threshold"])
        self.iou_spin.setToolTip(
            "Stop where a slice's mask overlaps the previous one by less than this IoU "
            "(0: go to the end of the stack). Between two seeded slices nothing stops."
        )
        form.addRow("IoU threshold", self.iou_spin)

        self.box_extension_spin = _spin(0.0, 1000.0, 0.05, DEFAULTS["box_extension"])
        self.box_extension_spin.setToolTip(
            "Grow the box taken from the previous mask by this fraction of its size (below 1) "
            "or these many pixels (from 1 on): helps objects that grow from slice to slice."
        )
        form.addRow("Box extension", self.box_extension_spin)

        self.motion_spin = _spin(0.0, 1.0, 0.05, DEFAULTS["motion_smoothing"])
        self.motion_spin.setToolTip(
            "Time-lapse only: how much of the object's earlier motion is kept when predicting "
            "where it moves next (0: follow the last move only)."
        )
        form.addRow("Motion smoothing", self.motion_spin)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        self._on_mode_changed()

        buttons = QHBoxLayout()
        self.propagate_button = QPushButton(f"Propagate ({KEYS['propagate'][0]})")
        self.propagate_button.setToolTip(
            "Carry the preview of the displayed slice through the stack, in the background. "
            "Prompts on other slices seed it there too; a slice with only a negative point "
            "marks where it ends. Commit then writes the whole object as one step."
        )
        self.propagate_all_button = QPushButton("Propagate all")
        self.propagate_all_button.setToolTip(
            "Carry every object of the 'Commit into' labels layer that is on the displayed "
            "slice through the stack; Commit extends each one under its own id."
        )
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Drop the propagated result without writing it.")
        for button in (self.propagate_button, self.propagate_all_button, self.discard_button):
            buttons.addWidget(button)
        form.addRow(buttons)
        self.result_label = flowing_label("Nothing propagated yet")
        self.result_label.setToolTip(
            "The slices the last propagation reached; it is shown in the 'propagation' layer "
            "(also in napari's 3-D view) until you commit or discard it."
        )
        form.addRow(self.result_label)

    def settings(self) -> dict[str, float | str]:
        """The keyword arguments of ``segment_volume`` (and ``motion_smoothing`` of ``track``)."""
        return {
            "projection": self.projection_combo.currentData(),
            "iou_threshold": float(self.iou_spin.value()),
            "box_extension": float(self.box_extension_spin.value()),
        }

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    @property
    def motion_smoothing(self) -> float:
        return float(self.motion_spin.value())

    def _on_mode_changed(self, *args) -> None:
        self.motion_spin.setEnabled(self.mode == TIME_LAPSE)


def _spin(low: float, high: float, step: float, value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(2)
    spin.setValue(value)
    return spin


def _tooltip_role():
    from qtpy.QtCore import Qt

    return Qt.ItemDataRole.ToolTipRole
