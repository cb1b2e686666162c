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
    QVBoxLayout,
    QWidget,
)

from .keys import KEYS, shortcut_help


class SetupPanel(QGroupBox):
    """Model, device, precision, image layer, and "Encode slice"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model and image", parent)
        from ..devices import available_devices
        from ..precision import PRECISIONS

        form = QFormLayout(self)
        self.model_combo = QComboBox()
        self.model_combo.setToolTip(
            "SAM model. vit_t (MobileSAM) is about 10x faster than vit_b on a CPU: the sensible "
            "choice on a laptop without a GPU. vit_b/vit_l/vit_h are more accurate and slower. "
            "Missing checkpoints download on first use; 'Import checkpoint…' adds a file you "
            "already have (offline machines, fine-tuned models such as MedSAM)."
        )
        form.addRow("Model", self.model_combo)

        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", *available_devices()])
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
        self.image_combo.setToolTip(
            "The image layer to segment. It follows the image layer you select in the layer list."
        )
        form.addRow("Image", self.image_combo)

        self.encode_button = QPushButton("Encode slice")
        self.encode_button.setToolTip(
            "Compute SAM's image embedding for the displayed slice now (it is also computed "
            "automatically at the first click). Later clicks then take milliseconds."
        )
        form.addRow(self.encode_button)


class PromptPanel(QGroupBox):
    """Positive/negative mode for new points, and the candidate mask of a single click."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Prompts", parent)
        form = QFormLayout(self)
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
        self.candidate_label = QLabel("–")
        self.candidate_label.setToolTip(
            "For a single click SAM proposes 3 masks (e.g. part, object, group); the one with the "
            "highest predicted IoU is shown first. Predicted IoU is SAM's own quality estimate."
        )
        self.next_candidate_button = QPushButton(f"Next mask ({KEYS['next_candidate'][0]})")
        self.next_candidate_button.setToolTip(
            "Cycle through SAM's 3 candidate masks for a single click."
        )
        candidate_row.addWidget(self.candidate_label, 1)
        candidate_row.addWidget(self.next_candidate_button)
        form.addRow("Mask", candidate_row)


class LabelsPanel(QGroupBox):
    """Where committed objects go, whether they may overwrite, Commit and Clear."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Labels", parent)
        form = QFormLayout(self)
        self.labels_combo = QComboBox()
        self.labels_combo.setToolTip(
            "Labels layer that committed objects go into. 'New labels layer' creates one with "
            "the image's shape at the first commit."
        )
        form.addRow("Commit into", self.labels_combo)
        self.overwrite_check = QCheckBox("Overwrite existing labels")
        self.overwrite_check.setToolTip(
            "Off: new objects only fill unlabeled pixels, so existing objects never change. "
            "On: new objects are painted over existing ones."
        )
        form.addRow(self.overwrite_check)
        buttons = QHBoxLayout()
        self.commit_button = QPushButton(f"Commit ({KEYS['commit'][0]})")
        self.commit_button.setToolTip(
            "Write the preview into the labels layer as new objects (next free ids) and clear "
            "the prompts. Undo with Ctrl+Z on the labels layer."
        )
        self.clear_button = QPushButton(f"Clear ({KEYS['clear'][0]})")
        self.clear_button.setToolTip("Discard the prompts and the preview on this slice.")
        buttons.addWidget(self.commit_button)
        buttons.addWidget(self.clear_button)
        form.addRow(buttons)


class StatusPanel(QWidget):
    """Status line, progress bar with Cancel, and the key list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setToolTip(
            "Model, device, and the state of the current slice's embedding."
        )
        layout.addWidget(self.status_label)
        progress_row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setToolTip("Progress of the running model work (download, encoding).")
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop waiting for the running work and drop its result.")
        self.cancel_button.setVisible(False)
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        keys = QLabel(
            "Keys: " + " · ".join(f"{k} {a.replace('_', ' ')}" for a, (k, _) in KEYS.items())
        )
        keys.setWordWrap(True)
        keys.setToolTip(shortcut_help())
        layout.addWidget(keys)
