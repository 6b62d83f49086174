"""The networks: INO's ViT backbone (timm + mask token + DINO's position-embedding resampling), the projection
head shared by CLS and patch tokens, the student network, the EMA teacher, strict weight loading/export, and any
timm ViT (DINOv2, DINOv3, MAE, ...) as a propagation backbone."""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "InoViT": "vit",
        "build_vit": "vit",
        "ProjectionHead": "head",
        "InoNetwork": "network",
        "build_network": "network",
        "make_teacher": "teacher",
        "ema_update": "teacher",
        "TimmBackbone": "timm_backbone",
        "build_timm_backbone": "timm_backbone",
        "load_backbone": "weights",
        "save_backbone": "weights",
    },
)
