"""Protocol cards: everything a number in the table was measured under, in words, from the configuration used.

A card joins what the task says about its data (dataset, split, frames scored, label encoding) with the settings
actually run (the preset, every setting changed from it, size rule, feature layer, top-k, context, radius,
temperature, checkpoint entry, precision) and the backbone. The raw configuration goes with it into the JSON, so a
setting the words below do not cover is still recorded.
"""

from __future__ import annotations

import dataclasses

from ino.propagation.presets import SPEED_ONLY, PropagationConfig, get_preset
from ino.suite.tasks import Task

#: where each preset's values come from (docs/propagation.md and docs/evaluation.md give the details)
PRESET_SOURCES = {
    "ino-davis": "INO (Pan et al., ACM MM 2022), the authors' DAVIS inference settings (docs/method.md §7.1)",
    "ino-ytvos": "INO (Pan et al., ACM MM 2022), the authors' YouTube-VOS inference settings (docs/method.md §9)",
    "dino-davis": "DINO (Caron et al., ICCV 2021), eval_video_segmentation.py defaults",
    "crw-jhmdb": "CRW (Jabri et al., NeurIPS 2020), code/test.py with the JHMDB settings of videowalk issue #10",
    "crw-vip": "CRW (Jabri et al., NeurIPS 2020), code/test.py with the VIP settings of videowalk issue #10",
    "cropmae-davis": "CropMAE (Eymaël et al., ECCV 2024), downstreams/propagation defaults (util.py)",
    "cropmae-jhmdb": "CropMAE (Eymaël et al., ECCV 2024), downstreams/propagation defaults (util.py)",
    "cropmae-vip": "CropMAE (Eymaël et al., ECCV 2024), downstreams/propagation defaults (util.py)",
}


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
    if config.short_side is None:
        rule = f"native size, each side floored to a multiple of {m}"
    else:
        rule = f"short side {config.short_side}, long side scaled and floored to a multiple of {m} (a resize, no crop)"
    for (h, w), (th, tw) in config.size_overrides:
        rule += f"; {w}x{h} -> {tw}x{th}"
    return rule


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
            "backbone layer": f"patch tokens of block {config.feature_block} (0-based) + the final norm",
            "top-k": f"{config.topk} affinities per query, over all context frames jointly",
            "context": f"the first frame + the {config.n_last_frames} previous frames",
            "radius": f"{config.radius} feature cells (square window)",
            "temperature": f"{config.temperature:g}",
            "first-frame labels to the grid": config.label_downsampling,
            "checkpoint key": f"{config.checkpoint_key} (training checkpoints; plain weight files have one entry)",
            "feature precision": config.feature_dtype,
            "normalisation": f"mean {config.mean}, std {config.std}; per-cell mask normalisation "
            + ("on" if config.norm_mask else "off"),
        }
    )
    return card
