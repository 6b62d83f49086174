"""Protocol cards: everything a number in the table was measured under, in words, from the configuration used.

A card joins what the task says about its data (dataset, split, frames scored, label encoding) with the settings
actually run (the preset, every setting changed from it, size rule, feature layer, top-k, context, radius,
temperature, checkpoint entry, precision) and the backbone. The raw configuration goes with it into the JSON, so a
setting the words below do not cover is still recorded.
"""

from __future__ import annotations

import dataclasses

from ino.propagation.presets import PRESET_SOURCES, SPEED_ONLY, PropagationConfig, get_preset
from ino.suite.tasks import Task


def protocol_settings(config: PropagationConfig) -> dict[str, object]:
    """The configuration without its speed-only settings, JSON-ready."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in SPEED_ONLY}


def changed_from_preset(preset: str, config: PropagationConfig) -> list[str]:
    """``"name: preset value -> value used"`` for every setting that differs from the named preset."""
    before, after = protocol_settings(get_preset(preset)), protocol_settings(config)
    return [f"{key}: {before[key]} -> {after[key]}" for key in after if before.get(key) != after[key]]


def resolution_rule(config: PropagationConfig) -> str:
    """The frame-size rule of :func:`ino.propagation.presets.target_size`, in words."""
    m = config.size_multiple
    if config.fixed_size is not None:
        h, w = config.fixed_size
        rule = f"every frame resized to {w}x{h} (squashed: the aspect ratio is not kept)"
    elif config.long_side is not None:
        rule = f"long side {config.long_side}, short side scaled and floored to a multiple of {m} (a resize, no crop)"
    elif config.short_side is None:
        rule = f"native size, each side floored to a multiple of {m}"
    else:
        rule = f"short side {config.short_side}, long side scaled and floored to a multiple of {m} (a resize, no crop)"
    for (h, w), (th, tw) in config.size_overrides:
        rule += f"; {w}x{h} -> {tw}x{th}"
    return rule


def _layer(block: int) -> str:
    """The tapped layer in words (a negative block counts from the last)."""
    if block == -1:
        return "patch tokens of the last block + the final norm"
    if block < 0:
        return f"patch tokens of block {block} (counted from the last, -1 = the last) + the final norm"
    return f"patch tokens of block {block} (0-based) + the final norm"


def _rule(config: PropagationConfig) -> dict[str, str]:
    """Top-k, context and radius in words, with the references' switches (docs/propagation.md) where set."""
    topk = f"{config.topk} affinities per query, over all context frames jointly"
    if config.topk_ties == "exact":
        topk += " (exactly k: entries tied with the k-th share the slots left)"
    context = f"the first frame + the {config.n_last_frames} previous frames"
    if config.pad_context:
        context += " (copies of the first frame fill in before it, each counted in the top-k)"
    window = "square window" if config.window == "square" else f"disk window, distance < {config.radius}"
    if not config.window_first_frame:
        window += "; the first frame is not windowed"
    return {"top-k": topk, "context": context, "radius": f"{config.radius} feature cells ({window})"}


def protocol_card(task: Task, preset: str, config: PropagationConfig, backbone: dict[str, object]) -> dict[str, str]:
    """The card of one task for one model, in the order it is shown."""
    changed = changed_from_preset(preset, config)
    card = {"task": task.title, **task.card}
    card.update(
        {
            "preset": f"{preset}: {PRESET_SOURCES.get(preset, 'no source recorded for this preset')}",
            "changed from the preset": "; ".join(changed) if changed else "nothing",
            "resolution rule": resolution_rule(config),
            "backbone": f"{backbone['arch']}/{backbone['patch_size']} from {backbone['source']}",
            "backbone layer": _layer(config.feature_block),
            **_rule(config),
            "temperature": f"{config.temperature:g}",
            "first-frame labels to the grid": config.label_downsampling,
            "checkpoint key": f"{config.checkpoint_key} (training checkpoints; plain weight files have one entry)",
            "feature precision": config.feature_dtype,
            "normalisation": f"mean {config.mean}, std {config.std}; per-cell mask normalisation "
            + ("on" if config.norm_mask else "off"),
            "resizing": f"frames by cv2 bilinear on {config.resize_dtype} pixels; masks back to the frame size by "
            f"{config.mask_resize} nearest",
        }
    )
    return card
