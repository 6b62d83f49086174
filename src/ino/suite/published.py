"""Published numbers shown as context rows of the table, each quoted from a source that was read, with the protocol
it was measured under. They are never compared as equals: each was measured with its authors' own code, data copy
and settings, which the protocol line names, and the table marks them "quoted".

Values are in percent, as published (a README's fractions are multiplied by 100), with the number of decimals the
source gives. A number that could not be read from its source is left out and named in :data:`LEFT_OUT`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContextRow:
    """One published result: who, which backbone, trained on what, the numbers, where they were read, and how
    they were measured."""

    task: str
    method: str
    backbone: str
    trained_on: str
    metrics: dict[str, float]
    decimals: int
    source: str
    url: str
    protocol: str

    def to_json(self) -> dict[str, object]:
        return {
            "task": self.task,
            "method": self.method,
            "backbone": self.backbone,
            "trained_on": self.trained_on,
            "metrics": self.metrics,
            "decimals": self.decimals,
            "source": self.source,
            "url": self.url,
            "protocol": self.protocol,
        }


_DINO = "Caron et al., Emerging Properties in Self-Supervised Vision Transformers (ICCV 2021), Table 5"
_DINO_URL = "https://arxiv.org/abs/2104.14294"
_DINO_PROTOCOL = (
    "DAVIS-2017 val, 480p, frozen output patch tokens, label propagation following Jabri et al. (DINO's "
    "eval_video_segmentation.py; ino's dino-davis preset)"
)
_CRW = "CRW README (ajabri/videowalk), 'Train' section: the released pretrained.pth"
_CRW_URL = "https://github.com/ajabri/videowalk#train"
_CRW_PROTOCOL = (
    "DAVIS-2017 val, native 480p, ResNet-18 stride 8, test.py --topk 10 --videoLen 20 --radius 12 "
    "--temperature 0.05 --cropSize -1, scored with davis2017-evaluation"
)
_CROPMAE = "CropMAE README (alexandre-eymael/CropMAE), 'Checkpoints' table"
_CROPMAE_URL = "https://github.com/alexandre-eymael/CropMAE"
_CROPMAE_PROTOCOL = {
    "davis": "DAVIS-2017 val at 480x880 (a pre-resized copy of DAVIS, scored against its resized annotations), "
    "ViT-S/16, temperature 0.7, top-k 7, radius 20, context 20 (downstreams/propagation defaults)",
    "vip": "VIP val, long side 880 (short side floored to a multiple of 64), ViT-S/16, temperature 0.7, top-k 10, "
    "radius 20, context 20 (downstreams/propagation defaults)",
    "jhmdb": "JHMDB split-1 test list (268 videos) at 320x320, ViT-S/16, temperature 0.7, top-k 7, radius 20, "
    "context 20, top-5 decoding (downstreams/propagation defaults)",
}


def _dino(
    backbone: str, jf: float, j: float, f: float, trained_on: str = "ImageNet", method: str = "DINO"
) -> ContextRow:
    metrics = {"J&F-Mean": jf, "J-Mean": j, "F-Mean": f}
    return ContextRow("davis", method, backbone, trained_on, metrics, 1, _DINO, _DINO_URL, _DINO_PROTOCOL)


def _cropmae(task: str, metric: str, value: float, trained_on: str) -> ContextRow:
    protocol = _CROPMAE_PROTOCOL[task]
    return ContextRow(task, "CropMAE", "ViT-S/16", trained_on, {metric: value}, 1, _CROPMAE, _CROPMAE_URL, protocol)


CONTEXT_ROWS: tuple[ContextRow, ...] = (
    _dino("ViT-S/16", 61.8, 60.2, 63.4),
    _dino("ViT-B/16", 62.3, 60.7, 63.9),
    _dino("ViT-S/8", 69.9, 66.6, 73.1),
    _dino("ViT-B/8", 71.4, 67.9, 74.9),
    _dino("ViT-S/8", 66.0, 63.9, 68.1, "ImageNet (labels)", "supervised (DINO paper's run)"),
    ContextRow(
        "davis",
        "CRW",
        "ResNet-18",
        "Kinetics-400",
        {"J&F-Mean": 67.606, "J-Mean": 64.5902, "F-Mean": 70.6219},
        3,
        _CRW,
        _CRW_URL,
        _CRW_PROTOCOL,
    ),
    _cropmae("davis", "J&F-Mean", 60.4, "ImageNet"),
    _cropmae("davis", "J&F-Mean", 58.6, "Kinetics-400"),
    _cropmae("vip", "mIoU", 33.3, "ImageNet"),
    _cropmae("vip", "mIoU", 33.7, "Kinetics-400"),
    _cropmae("jhmdb", "PCK@0.1", 43.6, "ImageNet"),
    _cropmae("jhmdb", "PCK@0.1", 42.9, "Kinetics-400"),
)

#: published numbers deliberately not shown, and why
LEFT_OUT: tuple[str, ...] = (
    "CRW paper (Jabri et al., NeurIPS 2020): JHMDB PCK and VIP mIoU, and its own DAVIS table - the paper's tables "
    "could not be read from a source at hand (its README's DAVIS number of the released model is shown instead).",
    "INO paper (Pan et al., ACM MM 2022): DAVIS-2017 and YouTube-VOS - the paper's tables could not be read from a "
    "source at hand (the authors' README shows them as images only).",
    "CropMAE: DAVIS J-Mean and F-Mean, JHMDB PCK@0.2 - its README gives J&F-Mean, mIoU and PCK@0.1 only.",
)


def context_rows(task: str) -> list[ContextRow]:
    """The quoted rows for ``task`` (a registry name), in the order above."""
    return [row for row in CONTEXT_ROWS if row.task == task]
