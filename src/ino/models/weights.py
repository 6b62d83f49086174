"""Load backbones strictly from INO, DINO, timm and our own safetensors files; export to safetensors.

With a timm model name as ``arch`` (DINOv2, DINOv3, MAE, ...), the file is mapped onto that timm model instead
(:mod:`ino.models.timm_backbone`), with the same strictness.

The official INO loader used ``strict=False`` after stripping prefixes, so a mismatched checkpoint silently
left random weights (docs/method.md §10.16). Here every backbone key must load with the right shape, or an
:class:`~ino.errors.InoError` names the file and lists the missing, unexpected and mis-shaped keys. The only
key a file may lack is ``mask_token``: pure DINO/timm backbones have none, and inference never uses it.

Checkpoints are read with ``torch.load(weights_only=True)``; INO's pickled ``argparse.Namespace`` is the one
extra class allowed, so loading a file never runs arbitrary code.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ino.configs.schema import VIT_ARCHS
from ino.errors import InoError
from ino.models.timm_backbone import Backbone, TimmBackbone, build_timm_backbone, stored_img_size, to_timm_state
from ino.models.vit import InoViT, build_vit
from ino.utils.atomic import atomic_write, atomic_write_text
from ino.utils.checksum import verify_digest

#: checkpoint entries that can hold the backbone, for files with several models or training state.
WHICH = ("student", "teacher")
_NESTED_ENTRIES = ("state_dict", "model")
#: prefixes added by DDP (``module.``) and by INO/DINO's backbone+head wrapper (``backbone.``).
_WRAPPER_PREFIXES = ("module.", "backbone.")
#: projection-head keys of INO (``headlist.``) and DINO (``head.``); not part of the backbone.
_HEAD_PREFIXES = ("headlist.", "head.")
_OPTIONAL_KEYS = frozenset({"mask_token"})
_REPORT_LIMIT = 10


def load_backbone(
    source: str | Path,
    *,
    arch: str | None = None,
    patch_size: int | None = None,
    which: str = "student",
    seed: int = 0,
    img_size: int | None = None,
) -> Backbone:
    """A backbone from a weights file, or ``"random"`` for a seeded random initialisation.

    For a file, architecture and patch size are inferred from the tensor shapes unless given, and the stored
    position-embedding grid (``img_size``) comes from the file (65 tokens for INO, 785 for DINO); an explicit
    ``img_size`` must agree with it. ``which`` picks the ``student`` (INO's inference default) or ``teacher``
    of a training checkpoint and is ignored for plain state dicts. ``seed`` fixes every random draw,
    including a ``mask_token`` the file lacks. For ``"random"`` the defaults are ViT-S/8 with img_size 64.

    ``arch`` may also be a timm model name (``vit_small_patch14_reg4_dinov2``, ``vit_small_patch16_dinov3``, ...):
    the file is then loaded into that timm model (:mod:`ino.models.timm_backbone`), whose patch size is fixed
    by the name.

    The returned model is in eval mode; ``model.source`` and ``model.initialised_keys`` (keys the file lacked,
    initialised from ``seed``) record where it came from.
    """
    if which not in WHICH:
        raise InoError(f"--which must be one of {', '.join(WHICH)}, got {which!r}")
    if arch is not None and arch not in VIT_ARCHS:
        return _load_timm(source, arch, patch_size=patch_size, which=which, seed=seed, img_size=img_size)
    if str(source) == "random":
        model = _seeded_build(arch or "vit_small", patch_size or 8, img_size or 64, seed)
        model.source = f"random(seed={seed})"
        return model.eval()

    path = Path(source)
    state, entry = _backbone_state(_read(path), path, which)
    file_arch, file_patch, file_img_size = _infer_geometry(state, path, arch, patch_size)
    if img_size is not None and img_size != file_img_size:
        raise InoError(
            f"{path}: position embedding is stored for img_size {file_img_size}, not the requested {img_size}"
        )
    try:
        model = _seeded_build(arch or file_arch, patch_size or file_patch, file_img_size, seed)
    except InoError as error:
        raise InoError(f"{path}: {error}") from error
    _check_keys(model.state_dict(), state, path, f"{model.arch}/{model.patch_size} (img_size {model.img_size})")
    model.load_state_dict(state, strict=False)
    model.source = f"{path}[{entry}]" if entry else str(path)
    model.initialised_keys = tuple(sorted(set(model.state_dict()) - set(state)))
    return model.eval()


def _load_timm(
    source: str | Path, arch: str, *, patch_size: int | None, which: str, seed: int, img_size: int | None
) -> TimmBackbone:
    """A timm ViT from a file in its release layout (or ``"random"``), loaded as strictly as ours."""
    if str(source) == "random":
        model = build_timm_backbone(arch, seed, img_size)
        model.source = f"random(seed={seed})"
    else:
        path = Path(source)
        state, entry = _backbone_state(_read(path), path, which)
        stored = stored_img_size(state, path)
        if img_size is not None and stored is not None and img_size != stored:
            raise InoError(f"{path}: position embedding is stored for img_size {stored}, not the requested {img_size}")
        model = build_timm_backbone(arch, seed, stored, for_loading=True)
        state = to_timm_state(state, model, path)
        _check_keys(model.model.state_dict(), state, path, f"timm {arch}")
        model.model.load_state_dict(state)
        model.source = f"{path}[{entry}]" if entry else str(path)
    if patch_size is not None and patch_size != model.patch_size:
        raise InoError(f"{arch} has patch size {model.patch_size}, not the requested {patch_size}")
    return model


def save_backbone(model: InoViT, path: str | Path, source: str = "") -> dict[str, str]:
    """Write the backbone as safetensors, with geometry and provenance in the header and ``<path>.json``.

    The header makes the file self-describing; the sidecar JSON is there to be read without safetensors.
    Returns the metadata written.
    """
    path = Path(path)
    metadata = {
        "format": "ino-backbone",
        "arch": model.arch,
        "patch_size": str(model.patch_size),
        "img_size": str(model.img_size),
        "source": source or model.source,
    }
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    sidecar = {**metadata, "patch_size": model.patch_size, "img_size": model.img_size}
    # atomic, with the permissions of any file the user writes (safetensors' own writer made it 0600)
    atomic_write(path, lambda stream: stream.write(save(tensors, metadata=metadata)))
    atomic_write_text(Path(f"{path}.json"), json.dumps(sidecar, indent=2) + "\n")
    return metadata


def _seeded_build(arch: str, patch_size: int, img_size: int, seed: int) -> InoViT:
    """Build under a forked, seeded RNG: deterministic, and the caller's random stream is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_vit(arch, patch_size, img_size)


def _read(path: Path) -> object:
    if not path.is_file():
        problem = "is a directory, not a weights file" if path.is_dir() else "file not found"
        raise InoError(f"{path}: {problem}")
    if _looks_like_safetensors(path):
        try:
            return load_file(str(path))
        except SafetensorError as error:
            raise InoError(f"{path}: corrupt safetensors file ({error})") from error
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises anything (KeyError, EOFError, ...) on foreign bytes
        detail = str(error).strip().split(". ")[0].splitlines()[0] if str(error).strip() else ""
        reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        raise InoError(f"{path}: not a PyTorch checkpoint or safetensors file ({reason})") from error


def _looks_like_safetensors(path: Path) -> bool:
    """safetensors starts with a little-endian u64 header length followed by a JSON object."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 8 + int.from_bytes(head[:8], "little") <= path.stat().st_size


def _backbone_state(loaded: object, path: Path, which: str) -> tuple[dict[str, torch.Tensor], str | None]:
    """The backbone tensors of a file (wrapper prefixes stripped, head keys dropped) and the entry used."""
    if not isinstance(loaded, Mapping):
        kind = type(loaded).__name__
        raise InoError(f"{path}: expected a dict of tensors or a training checkpoint, found {kind}")
    if "digest" in loaded:  # one of our training checkpoints: its contents must match the digest saved with them
        loaded = verify_digest(dict(loaded), path)
    entry = which if any(key in loaded for key in WHICH) else None
    if entry is None:
        entry = next((key for key in _NESTED_ENTRIES if isinstance(loaded.get(key), Mapping)), None)
    elif which not in loaded:
        raise InoError(f"{path}: has no {which!r} entry (top-level keys: {_preview(loaded)})")
    if entry is not None:
        loaded = loaded[entry]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise InoError(f"{path}: no backbone state dict found (keys: {_preview(loaded)})")
    state = {}
    for key, tensor in loaded.items():
        name = key
        while name.startswith(_WRAPPER_PREFIXES):
            name = name.split(".", 1)[1]
        if not name.startswith(_HEAD_PREFIXES):
            state[name] = tensor
    if not state:
        raise InoError(f"{path}: contains no backbone tensors")
    return state, entry


def _infer_geometry(
    state: Mapping[str, torch.Tensor], path: Path, arch: str | None, patch_size: int | None
) -> tuple[str, int, int]:
    """Architecture, patch size and img_size implied by the tensor shapes (arch/patch_size win when given)."""
    proj, pos_embed = state.get("patch_embed.proj.weight"), state.get("pos_embed")
    if proj is None or proj.ndim != 4 or pos_embed is None or pos_embed.ndim != 3:
        needs = "'patch_embed.proj.weight' and 'pos_embed'"
        raise InoError(f"{path}: not a ViT backbone (needs {needs}; found {_preview(state)})")
    dim = proj.shape[0]
    inferred = next((name for name, (width, _, _) in VIT_ARCHS.items() if width == dim), None)
    if arch is None and inferred is None:
        widths = ", ".join(f"{width} ({name})" for name, (width, _, _) in VIT_ARCHS.items())
        raise InoError(f"{path}: embedding width {dim} matches no supported architecture: {widths}")
    patch = patch_size or proj.shape[-1]
    tokens = pos_embed.shape[1] - 1
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise InoError(f"{path}: pos_embed has {tokens} patch positions, not a square grid (1 + g*g tokens)")
    return arch or inferred, patch, grid * patch


def _check_keys(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], path: Path, target: str
) -> None:
    """One InoError listing missing, unexpected and mis-shaped keys: no weight may stay silently random.

    ``expected`` is the model's state dict (reports follow model or file order: blocks.2 before blocks.10);
    ``target`` names the model in the message.
    """
    missing = [key for key in expected if key not in state and key not in _OPTIONAL_KEYS]
    unexpected = [key for key in state if key not in expected]
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = [
        f"{len(items)} {label} ({_preview(items)})"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches file vs model", mismatched),
        )
        if items
    ]
    raise InoError(f"{path}: weights do not fit a {target} backbone: {'; '.join(parts)}")


def _preview(items: object) -> str:
    """The first few names of a collection, with a count of the rest, for one-line error messages."""
    names = [str(item) for item in items] if isinstance(items, Mapping | list) else [type(items).__name__]
    shown = ", ".join(names[:_REPORT_LIMIT])
    return shown + (f", ... {len(names) - _REPORT_LIMIT} more" if len(names) > _REPORT_LIMIT else "")
