"""One backend's answer, or another's where the first has none.

``replay+mlip``: the recorded Materials Project label when the candidate matches a recorded
structure (``MatchingReplayBackend``), else a label computed by the interatomic potential
(``MlipBackend``, formation energies on MP's scale too). The result's ``backend`` names
who labelled it, so a report can count candidates matched, labelled by the potential, or
left unlabelled.
"""

from __future__ import annotations

from dataclasses import replace

from materialabs.crystals import Crystal
from materialabs.dft.base import DftBackend, DftResult, DftStatus


class FallbackBackend:
    def __init__(self, first: DftBackend, second: DftBackend) -> None:
        self.first, self.second = first, second

    @property
    def name(self) -> str:
        return f"{self.first.name}+{self.second.name}"

    def run(self, crystal: Crystal, timeout_s: float | None = None) -> DftResult:
        answer = self.first.run(crystal, timeout_s)
        if answer.status is not DftStatus.NO_LABEL:
            return answer
        computed = self.second.run(crystal, timeout_s)
        why = f"{self.first.name}: {answer.message}" if answer.message else self.first.name
        return replace(computed, wall_time_s=answer.wall_time_s + computed.wall_time_s,
                       message=f"no recorded label ({why}); {computed.message}".strip("; "))
