"""The networks: INO's ViT backbone (timm + mask token + DINO's position-embedding resampling), the projection
head shared by CLS and patch tokens, the student network, the EMA teacher, and strict weight loading/export."""

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
        "load_backbone": "weights",
        "save_backbone": "weights",
    },
)
