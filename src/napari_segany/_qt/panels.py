"""The widget's sections as plain Qt controls; the widget connects them to its actions."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..annotation.labels import COMMIT_MODE_LABELS
from .keys import KEYS, shortcut_help


def flowing_label(text: str = "") -> QLabel:
    """A label that wraps its text and never widens the dock as the text grows."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
    label.setMinimumWidth(1)
    return label


class SetupPanel(QGroupBox):
    """Model, device, precision, image layer, and "Encode slice"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model and image", parent)
        from ..precision import PRECISIONS

        form = QFormLayout(self)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.setToolTip(
            "SAM model. vit_t (MobileSAM) is about 6x faster than vit_b on a CPU: the sensible "
            "choice on a laptop without a GPU. vit_b/vit_l/vit_h are more accurate and slower. "
            "Models not on this computer yet say how much they download at first use; "
            "'Import checkpoint…' adds a file you already have (offline machines, fine-tuned "
            "models such as MedSAM)."
        )
        form.addRow("Model", self.model_combo)

        self.device_combo = QComboBox()
        self.device_combo.setToolTip(
            "Where SAM runs. auto picks a CUDA GPU, then Apple MPS, then the CPU. "
            "Only devices present on this computer are listed."
        )
        form.addRow("Device", self.device_combo)

        self.precision_combo = QComboBox()
        self.precision_combo.addItems(list(PRECISIONS))
        self.precision_combo.setToolTip(
            "Numeric precision of the image encoder. auto: bf16 where the hardware runs it fast "
            "(recent GPUs, CPUs with AVX-512 BF16 or AMX), fp32 elsewhere. bf16/fp16 encode "
            "faster with slightly different masks; the decoder always runs in fp32."
        )
        form.addRow("Precision", self.precision_combo)

        self.image_combo = QComboBox()
        self.image_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.image_combo.setMinimumContentsLength(12)
        self.image_combo.setToolTip(
            "The image layer to segment. It follows the image layer you select in the layer list."
        )
        form.addRow("Image", self.image_combo)

        self.encode_button = QPushButton("Encode slice")
        self.encode_button.setToolTip(
            "Compute SAM's image embedding for the displayed slice now (it is also computed "
            "automatically at the first click). Later clicks then take milliseconds. On a "
            "large (tiled) image: encode every tile, saving them in the embedding store."
        )
        form.addRow(self.encode_button)


class PromptPanel(QGroupBox):
    """The Point and Box tools, positive/negative points, and a single click's candidates."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Prompts", parent)
        form = QFormLayout(self)
        tools = QHBoxLayout()
        self.point_button = QPushButton("Point")
        self.point_button.setToolTip(f"Click on the image to add points ({KEYS['point_tool'][0]}).")
        self.box_button = QPushButton("Box")
        self.box_button.setToolTip(
            f"Drag on the image to draw a box around an object; each box is one object "
            f"({KEYS['box_tool'][0]})."
        )
        self._tool_group = QButtonGroup(self)
        for button in (self.point_button, self.box_button):
            button.setCheckable(True)
            self._tool_group.addButton(button)
            tools.addWidget(button)
        self.point_button.setChecked(True)
        tools.addStretch(1)
        form.addRow("Tool", tools)

        mode_row = QHBoxLayout()
        self.positive_radio = QRadioButton("Positive")
        self.negative_radio = QRadioButton("Negative")
        self.positive_radio.setChecked(True)
        for radio, text in (
            (self.positive_radio, "New points mark the object (green)."),
            (self.negative_radio, "New points mark what is not the object (red)."),
        ):
            radio.setToolTip(f"{text} Press {KEYS['toggle_point_mode'][0]} to switch.")
            mode_row.addWidget(radio)
        self._mode_group = QButtonGroup(self)
        self._mode_group.addButton(self.positive_radio)
        self._mode_group.addButton(self.negative_radio)
        form.addRow("New points", mode_row)

        candidate_row = QHBoxLayout()
        self.candidate_label = flowing_label("–")
        self.candidate_label.setToolTip(
            "For a single click SAM proposes 3 masks (e.g. part, object, group); the one with the "
            "highest predicted IoU is shown first. Predicted IoU is SAM's own quality estimate."
        )
        self.next_candidate_button = QPushButton(f"Next mask ({KEYS['next_candidate'][0]})")
        self.next_candidate_button.setToolTip(
            "Cycle through SAM's 3 candidate masks for a single click."
        )
        self.next_candidate_button.setEnabled(False)
        candidate_row.addWidget(self.candidate_label, 1)
        candidate_row.addWidget(self.next_candidate_button)
        form.addRow("Mask", candidate_row)


class LabelsPanel(QGroupBox):
    """Where committed objects go and how, Commit, Clear and Undo, and the object record."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Labels", parent)
        form = QFormLayout(self)
        self.labels_combo = QComboBox()
        self.labels_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.labels_combo.setMinimumContentsLength(12)
        self.labels_combo.setToolTip(
            "Labels layer that this image's committed objects go into; only layers of the "
            "image's shape are offered. 'New labels layer' creates one at the first commit. "
            "Each image remembers its own."
        )
        form.addRow("Commit into", self.labels_combo)
        self.commit_mode_combo = QComboBox()
        for mode, text in COMMIT_MODE_LABELS.items():
            self.commit_mode_combo.addItem(text, mode)
        self.commit_mode_combo.setToolTip(
            "New objects in unlabeled pixels: existing objects never change. Overwrite: paint "
            "over existing labels. Replace: the object under the first point is redrawn as "
            "the new mask, keeping its id."
        )
        form.addRow("Commit mode", self.commit_mode_combo)
        buttons = QHBoxLayout()
        self.commit_button = QPushButton(f"Commit ({KEYS['commit'][0]})")
        self.commit_button.setToolTip(
            "Write the preview into the labels layer as new objects (next free ids) and clear "
            "the prompts. Undo with 'Undo commit' or Ctrl+Z on the labels layer."
        )
        self.clear_button = QPushButton(f"Clear ({KEYS['clear'][0]})")
        self.clear_button.setToolTip("Discard the prompts and the preview on this slice.")
        self.undo_button = QPushButton("Undo commit")
        self.undo_button.setToolTip("Take back the last commit, whichever layer is selected.")
        self.undo_button.setEnabled(False)
        for button in (self.commit_button, self.clear_button, self.undo_button):
            buttons.addWidget(button)
        form.addRow(buttons)
        record_row = QHBoxLayout()
        self.record_label = flowing_label("No objects committed yet")
        self.record_label.setToolTip(
            "Objects committed in this session, with the mean time from an object's first "
            "prompt to its commit and the prompts it took (SAM's data-engine figure)."
        )
        self.save_record_button = QPushButton("Save record…")
        self.save_record_button.setToolTip(
            "Save one row per committed object (id, slice, seconds, prompts, source) as CSV."
        )
        record_row.addWidget(self.record_label, 1)
        record_row.addWidget(self.save_record_button)
        form.addRow(record_row)


class StatusPanel(QWidget):
    """Status line, progress bar with Cancel, and the key list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status_label = flowing_label()
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setToolTip(
            "Model, device, and the state of the current slice's embedding. Images larger "
            "than about 1.5 times the model's input are tiled: each tile is encoded the first "
            "time you click in it."
        )
        layout.addWidget(self.status_label)
        self.tile_grid_check = QCheckBox("Show tile grid")
        self.tile_grid_check.setToolTip(
            "Draw the tiles of a large (tiled) image over it: orange tiles are encoded, grey "
            "ones are encoded at your first click in them."
        )
        layout.addWidget(self.tile_grid_check)
        progress_row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setToolTip("Progress of the running model work (download, encoding).")
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running work (between two of its steps).")
        self.cancel_button.setVisible(False)
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        keys = flowing_label(
            "Keys: " + " · ".join(f"{k} {a.replace('_', ' ')}" for a, (k, _) in KEYS.items())
        )
        keys.setToolTip(shortcut_help())
        layout.addWidget(keys)
