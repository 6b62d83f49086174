"""ino: INO self-supervised video segmentation (training, label propagation, DAVIS J&F scoring)."""

__version__ = "0.1.0"
