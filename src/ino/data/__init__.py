"""Data in and out: DAVIS / YouTube-VOS folders and masks, videos and their probes, training clips, crops and
masks, transcoding for training, and the synthetic benchmark."""

from __future__ import annotations

from ino.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "DavisLayout": "davis",
        "YtvosLayout": "davis",
        "read_mask": "davis",
        "read_object_ids": "davis",
        "object_ids": "davis",
        "read_frame": "davis",
        "write_mask": "davis",
        "probe_video": "videos",
        "iter_frames": "videos",
        "read_frames": "videos",
        "list_videos": "sources",
        "ClipIndex": "clips",
        "ClipSampler": "clips",
        "ClipDataset": "clips",
        "MultiCropAugment": "augment",
        "step_mask": "masking",
        "prepare": "transcode",
        "write_benchmark": "synthetic",
    },
)
