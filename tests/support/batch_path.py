"""The batch propagation path as it stood before the streaming API: features of a whole video in, masks out.

``ino.propagation.api.VideoPropagator`` replaced this generator (every path is now a loop over the propagator);
it is kept here, verbatim in behaviour, as the reference the streaming API must reproduce mask for mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import torch

from ino.data.davis import object_ids
from ino.propagation.engine import LabelPropagator, labels_to_mask
from ino.propagation.presets import PropagationConfig


def batch_path(
    features: Iterable[torch.Tensor],
    masks: Mapping[int, np.ndarray],
    config: PropagationConfig,
    target_hw: tuple[int, int],
    original_hw: tuple[int, int],
) -> Iterator[np.ndarray]:
    """Output ids for every frame: frame 0 is its given mask (void as background), later frames are propagated;
    ``masks`` at later frames start their new objects' chains."""
    propagator = LabelPropagator(config)
    for t, frame_features in enumerate(features):
        soft = propagator.step(frame_features, masks.get(t))
        yield object_ids(masks[0]) if t == 0 else labels_to_mask(soft, target_hw, original_hw, config)


def engine_masks(
    features: Iterable[torch.Tensor], masks: Mapping[int, np.ndarray], config: PropagationConfig
) -> list[np.ndarray]:
    """The product path from precomputed features: ``VideoPropagator.step_features`` frame after frame."""
    from ino.propagation.api import VideoPropagator

    propagator = VideoPropagator(None, config)
    return [propagator.step_features(f, masks.get(t)) for t, f in enumerate(features)]
