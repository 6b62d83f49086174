"""Content digests of checkpoints: written with a checkpoint, verified wherever one is loaded."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ino.errors import InoError


def digest(value: Any, hasher: Any = None) -> str:
    """SHA-256 of a checkpoint's contents: tensors by dtype, shape and bytes, everything else by ``repr``."""
    hasher = hasher or hashlib.sha256()
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            hasher.update(repr(key).encode())
            digest(value[key], hasher)
    elif isinstance(value, (list, tuple)):
        hasher.update(b"[")
        for item in value:
            digest(item, hasher)
        hasher.update(b"]")
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        hasher.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    else:
        hasher.update(repr(value).encode())
    return hasher.hexdigest()


def verify_digest(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``state`` without its ``digest`` entry, after checking that entry against the contents (files written
    before digests existed have none and pass)."""
    stored = state.pop("digest", None)
    if stored is not None and stored != digest(state):
        raise InoError(f"{path}: the contents do not match the checksum written with them (the file was damaged)")
    return state
