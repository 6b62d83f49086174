"""Frames to propagation features: preprocessing, batched backbone passes and background frame decoding.

Preprocessing (docs/method.md §7.2) resizes the uint8 frame first (cv2 bilinear), then divides by 255 and
normalises with the (0.228, 0.224, 0.225) std quirk kept from DINO for exact reproduction.

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

import cv2
import numpy as np
import torch

from ino.errors import InoError
from ino.models.timm_backbone import Backbone, TimmBackbone
from ino.propagation.presets import PropagationConfig, target_size
from ino.utils.distributed import resolve_device

T = TypeVar("T")
_END = object()
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def feature_dtype(config: PropagationConfig) -> torch.dtype:
    """The dtype context features are stored and multiplied in (``config.feature_dtype``)."""
    return TORCH_DTYPES[config.feature_dtype]


def resize_frame(rgb: np.ndarray, config: PropagationConfig) -> np.ndarray:
    """The (th, tw, 3) frame the network sees: cv2 bilinear resize of an (H, W, 3) uint8 RGB frame.

    uint8 (INO, DINO) unless ``config.resize_dtype`` is float32: then the frame is resized as float32 values
    0..255, as the references resize their float images (the same up to float rounding after /255, where a uint8
    resize rounds every pixel to an integer); a frame already at the size stays uint8.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InoError(f"expected an (H, W, 3) uint8 RGB frame, got shape {rgb.shape} dtype {rgb.dtype}")
    th, tw = target_size(rgb.shape[0], rgb.shape[1], config)
    if (th, tw) != rgb.shape[:2] and config.resize_dtype == "float32":
        return cv2.resize(rgb.astype(np.float32), (tw, th), interpolation=cv2.INTER_LINEAR)
    resized = rgb if (th, tw) == rgb.shape[:2] else cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_LINEAR)
    if not (resized.flags.writeable and resized.flags.c_contiguous):  # decoders may hand out read-only buffers
        resized = np.array(resized)
    return resized


def normalise(frames: torch.Tensor, config: PropagationConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Network inputs (B, 3, th, tw) from resized frames (B, th, tw, 3), uint8 or float 0..255, on their device.

    Scaled to [0, 1], then normalised with the config's mean and std, in that order, as DINO's evaluation does.
    Done wherever the frames are (on the GPU, a quarter of the bytes cross the bus and the CPU is spared).
    """
    image = frames.permute(0, 3, 1, 2).to(dtype) / 255.0
    mean = torch.tensor(config.mean, device=frames.device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(config.std, device=frames.device, dtype=dtype).view(1, 3, 1, 1)
    return (image - mean) / std


def preprocess(rgb: np.ndarray, config: PropagationConfig) -> torch.Tensor:
    """A (3, th, tw) float32 network input from an (H, W, 3) uint8 RGB frame: resize, then normalise."""
    return normalise(torch.from_numpy(resize_frame(rgb, config))[None], config)[0]


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` ahead; its exceptions re-raise here.

    Closing the returned generator (what every error path downstream does) stops the thread and waits for it
    to end: a thread still inside a decoder when the interpreter exits is killed there and aborts the process
    (``terminate called without an active exception``, exit 134), after the error line was printed.
    """
    if depth < 1:
        yield from items
        return
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Queue ``item`` once there is room; False, without queueing it, once the consumer has stopped."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as error:  # handed to the consumer, which re-raises it
            offer(error)

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
        worker.join()


class FeatureExtractor:
    """Block-k patch features (C, h, w) of RGB uint8 frames, as INO's inference computes them (docs/method.md §7.2-7.3).

    ``config.feature_block`` picks the block (INO: 6, i.e. the 7th; DINO: 11; -1: the last, CropMAE's) and
    ``config.feature_dtype`` the precision: float16/bfloat16 run the backbone under autocast (CUDA or CPU) and
    store half-precision features (half the context memory, and the affinity products run in that precision
    too). A float64 backbone gives float64 features and ignores the setting (used by the exactness tests).
    """

    def __init__(
        self,
        backbone: Backbone,
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
        self.device = resolve_device(device)
        self.backbone = backbone.to(self.device).eval()
        self.config = config
        self.batch_size = batch_size
        self._param_dtype = next(backbone.parameters()).dtype
        self._block = tapped_block(backbone, config.feature_block)

    def _autocast(self) -> torch.autocast | nullcontext[None]:
        half = feature_dtype(self.config)
        if half != torch.float32 and self._param_dtype != torch.float64:
            return torch.autocast(self.device.type, dtype=half)
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
            features = self.backbone.patch_features(inputs, block=self._block)
        if self._param_dtype == torch.float64:
            return features
        return features.to(feature_dtype(self.config))

    def __call__(self, frames: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        """Features of each frame in order, computed ``batch_size`` frames at a time.

        Every frame must have the size of the first (a video does); a frame that differs is named by index.
        """
        pending: list[np.ndarray] = []
        first_hw: tuple[int, int] | None = None
        for index, frame in enumerate(frames):
            check_frame_size(frame, first_hw, index)
            if first_hw is None:
                first_hw = (frame.shape[0], frame.shape[1])
                target_size(*first_hw, self.config)  # fail early on a too-small frame
            pending.append(frame)
            if len(pending) == self.batch_size:
                yield from self.batch(pending)
                pending = []
        if pending:
            yield from self.batch(pending)


def tapped_block(backbone: Backbone, block: int) -> int:
    """The 0-based block ``feature_block`` names: a negative one counts from the last (-1: the last, any depth)."""
    depth = len(backbone.model.blocks if isinstance(backbone, TimmBackbone) else backbone.blocks)
    if not -depth <= block < depth:
        raise InoError(
            f"feature block {block} does not exist: the backbone has blocks 0..{depth - 1} (or -{depth}..-1)"
        )
    return block % depth


def check_frame_size(frame: np.ndarray, first_hw: tuple[int, int] | None, index: int) -> None:
    """One message naming frame ``index`` when its size differs from frame 0's (a video's frames share one)."""
    if first_hw is not None and frame.shape[:2] != tuple(first_hw):
        raise InoError(
            f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, frame 0 is {first_hw[1]}x{first_hw[0]}: "
            "all frames of a video must have one size"
        )


def map_frames(read: Callable[[T], np.ndarray], sources: Iterable[T], depth: int = 4) -> Iterator[np.ndarray]:
    """Decode ``sources`` (e.g. JPEG paths) with ``read`` in a background thread, ``depth`` frames ahead."""
    return prefetch((read(source) for source in sources), depth)
