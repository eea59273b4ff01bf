"""The order a study's runs are made in: blocks of boots, randomised, so drift cannot pose as an effect.

Block ``b`` boots every boot group of the study afresh (one lab per kernel,
CPUs, replicate), in an order drawn from the study's seed, and runs in each
boot its points ``runs_per_boot`` times, in a shuffled order too. Every level
of every factor is thus spread over the whole study: whatever drifts on the
host falls on all levels alike, and a level's mean position differs from
another's by less than one block. A boot is one task of the cluster: its
runs share a guest, and no two boots share one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wqkit.study.spec import Point, Study


@dataclass(frozen=True)
class ScheduledRun:
    """One run of the study: a point, its repetition, the block (boot) it runs in, its place
    in the order."""

    order: int
    repetition: int
    point: Point
    block: int = 0

    @property
    def key(self) -> str:
        """Unique in the study: the point's key and the repetition."""
        return f"{self.point.key}#{self.repetition}"

    @property
    def boot(self) -> str:
        """The planned boot this run shares with the other runs of its block and lab."""
        return f"{self.block}|{self.point.lab}"


def schedule(study: Study) -> list[ScheduledRun]:
    """Every run of the study in its randomised, blocked order (the same for the same seed)."""
    rng = np.random.default_rng(study.seed)
    runs: list[ScheduledRun] = []
    labs = study.labs
    for block in range(study.boots):
        for lab_index in rng.permutation(len(labs)):
            points = [p for p in study.points if p.lab == labs[lab_index]]
            slots = [(p, k) for p in points for k in range(study.runs_per_boot)]
            for slot in rng.permutation(len(slots)):
                point, k = slots[slot]
                runs.append(ScheduledRun(len(runs), block * study.runs_per_boot + k, point, block))
    return runs


def boots(runs: list[ScheduledRun]) -> list[list[ScheduledRun]]:
    """The runs grouped by planned boot, in the order the boots come."""
    grouped: dict[str, list[ScheduledRun]] = {}
    for run in runs:
        grouped.setdefault(run.boot, []).append(run)
    return list(grouped.values())
