"""micro-sam's finetuned models: where their files are, their hashes and what each is for.

Facts from micro-sam 1.8.14's ``micro_sam/util.py:models()``. Each model is a SAM checkpoint
(the encoder file, a plain SAM state dict) and an instance decoder beside it, both verified
with the xxh128 hashes micro-sam publishes (it publishes no SHA-256; the SHA-256 of a file is
recorded after its first verified download). Files live on BioImage.IO's S3 store
(``<id>/<version>/files/<arch>.pt`` and ``<arch>_decoder.pt``) or on the University of
Göttingen's ownCloud (``s/<key>/download``).

This module is data only (no torch), so the model picker can list the models at startup.
"""

from __future__ import annotations

from dataclasses import dataclass

LIGHT_MICROSCOPY = "Light microscopy"
ELECTRON_MICROSCOPY = "Electron microscopy"
HISTOPATHOLOGY = "Histopathology"
MEDICAL_IMAGING = "Medical imaging"
DOMAINS = (LIGHT_MICROSCOPY, ELECTRON_MICROSCOPY, HISTOPATHOLOGY, MEDICAL_IMAGING)

# The model offered first to a microscopy user: micro-sam's light-microscopy generalist,
# as micro-sam itself defaults to. Cells and nuclei in light microscopy are what most users
# label; vit_b_lm is micro-sam's best trade of accuracy for time (vit_l_lm gains little for
# three times the encoder's work). Without a GPU, where the vit_b encoder takes 5-10 s an
# image, its MobileSAM-sized sibling keeps clicks interactive, as the registry's own CPU
# default (vit_t) does.
DEFAULT_MICROSCOPY_MODEL_GPU = "vit_b_lm"
DEFAULT_MICROSCOPY_MODEL_CPU = "vit_t_lm"

_BIOIMAGE_IO = "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io"
_OWNCLOUD = "https://owncloud.gwdg.de/index.php/s"


@dataclass(frozen=True)
class MicroSamModel:
    """One of micro-sam's models: a SAM checkpoint and its instance decoder.

    architecture: the SAM encoder (vit_t, vit_b, vit_l, vit_h). domain: one of
    :data:`DOMAINS`, how the model picker groups models. The ``*_xxh128`` are hex digests;
    ``filename`` and ``decoder_filename`` are paths relative to the model cache.
    """

    name: str
    architecture: str
    domain: str
    description: str
    url: str
    xxh128: str
    decoder_url: str
    decoder_xxh128: str

    @property
    def filename(self) -> str:
        return f"microsam/{self.name}.pt"

    @property
    def decoder_filename(self) -> str:
        return f"microsam/{self.name}_decoder.pt"


def _bioimage_io(
    name: str, domain: str, resource: str, xxh128: str, decoder_xxh128: str, description: str
) -> MicroSamModel:
    architecture = name.split("_")[0] + "_" + name.split("_")[1]
    base = f"{_BIOIMAGE_IO}/{resource}/files/{architecture}"
    return MicroSamModel(
        name, architecture, domain, description, f"{base}.pt", xxh128, f"{base}_decoder.pt",
        decoder_xxh128,
    )  # fmt: skip


def _owncloud(
    name: str,
    domain: str,
    key: str,
    xxh128: str,
    decoder_key: str,
    decoder_xxh128: str,
    description: str,
) -> MicroSamModel:
    architecture = name.split("_")[0] + "_" + name.split("_")[1]
    return MicroSamModel(
        name, architecture, domain, description, f"{_OWNCLOUD}/{key}/download", xxh128,
        f"{_OWNCLOUD}/{decoder_key}/download", decoder_xxh128,
    )  # fmt: skip


_MODELS = [
    _bioimage_io(
        "vit_b_lm", LIGHT_MICROSCOPY, "diplomatic-bug/1.2",
        "fe9252a29f3f4ea53c15a06de471e186", "708b15ac620e235f90bb38612c4929ba",
        "cells and nuclei in light microscopy (fluorescence, phase contrast, brightfield); "
        "the microscopy default",
    ),
    _bioimage_io(
        "vit_l_lm", LIGHT_MICROSCOPY, "idealistic-rat/1.2",
        "017f20677997d628426dec80a8018f9d", "2faeafa03819dfe03e7c46a44aaac64a",
        "cells and nuclei in light microscopy, the most accurate; about 3x slower than vit_b_lm",
    ),
    _bioimage_io(
        "vit_t_lm", LIGHT_MICROSCOPY, "faithful-chicken/1.1",
        "72ec5074774761a6e5c05a08942f981e", "3e914a5f397b0312cdd36813031f8823",
        "cells and nuclei in light microscopy, MobileSAM-sized: fastest on a laptop CPU",
    ),
    _bioimage_io(
        "vit_b_em_organelles", ELECTRON_MICROSCOPY, "noisy-ox/1.2",
        "f3bf2ed83d691456bae2c3f9a05fb438", "bb6398956a6b0132c26b631c14f95ce2",
        "organelles (mitochondria, nuclei, ...) in electron microscopy",
    ),
    _bioimage_io(
        "vit_l_em_organelles", ELECTRON_MICROSCOPY, "humorous-crab/1.2",
        "810b084b6e51acdbf760a993d8619f2d", "334877640bfdaaabce533e3252a17294",
        "organelles in electron microscopy, the most accurate; about 3x slower than vit_b",
    ),
    _bioimage_io(
        "vit_t_em_organelles", ELECTRON_MICROSCOPY, "greedy-whale/1",
        "253474720c497cce605e57c9b1d18fd9", "8f897c7bb93174a4d1638827c4dd6f44",
        "organelles in electron microscopy, MobileSAM-sized: fastest on a CPU",
    ),
    _owncloud(
        "vit_b_histopathology", HISTOPATHOLOGY, "sBB4H8CTmIoBZsQ",
        "ffd1a2cd84570458b257bd95fdd8f974", "KO9AWqynI7SFOBj", "6a66194dcb6e36199cbee2214ecf7213",
        "nuclei in H&E and other stained histopathology slides",
    ),
    _owncloud(
        "vit_l_histopathology", HISTOPATHOLOGY, "IZgnn1cpBq2PHod",
        "b591833c89754271023e901281dee3f2", "oIs6VSmkOp7XrKF", "46aab7765d4400e039772d5a50b55c04",
        "nuclei in histopathology, more accurate; about 3x slower than vit_b",
    ),
    _owncloud(
        "vit_h_histopathology", HISTOPATHOLOGY, "L7AcvVz7DoWJ2RZ",
        "bd1856dafc156a43fb3aa705f1a6e92e", "1qAKxy5H0jgwZvM", "3ed9f87e46ad5e16935bd8d722c8dc47",
        "nuclei in histopathology, the largest model; needs a GPU",
    ),
    _owncloud(
        "vit_b_medical_imaging", MEDICAL_IMAGING, "f5Ol4FrjPQWfjUF",
        "40169f1e3c03a4b67bff58249c176d92", "ahd3ZhZl2e0RIwz", "9e498b12f526f119b96c88be76e3b2ed",
        "organs and lesions in CT, MRI, ultrasound and X-ray (MedicoSAM)",
    ),
]  # fmt: skip

MICROSAM_MODELS: dict[str, MicroSamModel] = {m.name: m for m in _MODELS}
"""micro-sam's models by name, grouped by domain in :data:`DOMAINS` order."""


def models_by_domain() -> dict[str, list[MicroSamModel]]:
    """The models of each domain, in :data:`DOMAINS` order (for the model picker)."""
    return {d: [m for m in MICROSAM_MODELS.values() if m.domain == d] for d in DOMAINS}
