"""The order a study's runs are made in: randomised within blocks, so drift cannot pose as an effect.

Each repetition is a block that holds every point once, in an order drawn
from the study's seed. Every level of every factor is thus spread over the
whole study: whatever drifts on the host (temperature, other load, a
slowing disk) falls on all levels alike, and a level's mean position differs
from another's by less than one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wqkit.study.spec import Point, Study


@dataclass(frozen=True)
class ScheduledRun:
    """One run of the study: a point, its repetition (block) and its place in the order."""

    order: int
    repetition: int
    point: Point

    @property
    def key(self) -> str:
        """Unique in the study: the point's key and the repetition."""
        return f"{self.point.key}#{self.repetition}"


def schedule(study: Study) -> list[ScheduledRun]:
    """Every run of the study in its randomised, blocked order (the same for the same seed)."""
    rng = np.random.default_rng(study.seed)
    runs = []
    for repetition in range(study.repetitions):
        for point_index in rng.permutation(len(study.points)):
            runs.append(ScheduledRun(len(runs), repetition, study.points[point_index]))
    return runs
