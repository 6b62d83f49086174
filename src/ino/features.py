"""Frames to propagation features: preprocessing, batched backbone passes and background frame decoding.

Label propagation is sequential, but features are not: every frame's features depend on that frame only, so
they are computed ``batch_size`` frames at a time (what keeps a GPU busy) while a background thread decodes the
next frames (JPEG/H.264 decoding releases the GIL). Features stay on the device; only the frames in flight are
held, never the whole video.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from typing import TypeVar

import numpy as np
import torch

from ino.errors import InoError
from ino.models.vit import InoViT
from ino.propagation_presets import PropagationConfig, normalise, resize_frame, target_size

T = TypeVar("T")
_END = object()


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` ahead; its exceptions re-raise here.

    Closing the returned generator early (e.g. on an error downstream) stops the thread at its next item.
    """
    if depth < 1:
        yield from items
        return
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as error:  # handed to the consumer, which re-raises it
            buffer.put(error)

    worker = threading.Thread(target=produce, daemon=True, name="ino-prefetch")
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()


class FeatureExtractor:
    """Block-k patch features (C, h, w) of RGB uint8 frames, as INO's inference computes them (spec §7.2-7.3).

    ``config.feature_block`` picks the block (INO: 6, i.e. the 7th; DINO: 11) and ``config.feature_dtype`` the
    precision: float16/bfloat16 run the backbone under autocast on CUDA and store half-precision features
    (half the context memory); on the CPU the backbone stays in its own dtype. A float64 backbone gives float64
    features (used by the exactness tests).
    """

    def __init__(
        self,
        backbone: InoViT,
        config: PropagationConfig,
        device: torch.device | str | None = None,
        batch_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise InoError(f"feature batch size must be >= 1, got {batch_size}")
        if backbone.patch_size != config.patch_size:
            raise InoError(
                f"the backbone has patch size {backbone.patch_size} but the propagation settings assume "
                f"{config.patch_size}"
            )
        self.device = default_device() if device is None else torch.device(device)
        self.backbone = backbone.to(self.device).eval()
        self.config = config
        self.batch_size = batch_size
        self._param_dtype = next(backbone.parameters()).dtype

    def _autocast(self) -> torch.autocast | nullcontext[None]:
        half = self.config.torch_feature_dtype
        if self.device.type == "cuda" and half != torch.float32:
            return torch.autocast("cuda", dtype=half)
        return nullcontext()

    @torch.inference_mode()
    def batch(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Features (B, C, h, w) of same-size frames, on the device."""
        sizes = {frame.shape for frame in frames}
        if len(sizes) != 1:
            raise InoError(f"frames of one batch differ in size: {sorted(sizes)}")
        resized = torch.from_numpy(np.stack([resize_frame(frame, self.config) for frame in frames]))
        if self.device.type == "cuda":
            resized = resized.pin_memory()
        inputs = normalise(resized.to(self.device, non_blocking=True), self.config, self._param_dtype)
        with self._autocast():
            features = self.backbone.patch_features(inputs, block=self.config.feature_block)
        if self._param_dtype == torch.float64:
            return features
        return features.to(self.config.torch_feature_dtype)

    def __call__(self, frames: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        """Features of each frame in order, computed ``batch_size`` frames at a time.

        Every frame must have the size of the first (a video does); a frame that differs is named by index.
        """
        pending: list[np.ndarray] = []
        first_shape: tuple[int, ...] | None = None
        for index, frame in enumerate(frames):
            if first_shape is None:
                first_shape = frame.shape
                target_size(frame.shape[0], frame.shape[1], self.config)  # fail early on a too-small frame
            elif frame.shape != first_shape:
                raise InoError(
                    f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, frame 0 is "
                    f"{first_shape[1]}x{first_shape[0]}: all frames of a video must have one size"
                )
            pending.append(frame)
            if len(pending) == self.batch_size:
                yield from self.batch(pending)
                pending = []
        if pending:
            yield from self.batch(pending)


def map_frames(read: Callable[[T], np.ndarray], sources: Iterable[T], depth: int = 4) -> Iterator[np.ndarray]:
    """Decode ``sources`` (e.g. JPEG paths) with ``read`` in a background thread, ``depth`` frames ahead."""
    return prefetch((read(source) for source in sources), depth)
