"""SevenNet (Park et al., J. Chem. Theory Comput. 2024), trained on MPtrj: SevenNet-0
(11 Jul 2024 checkpoint) and SevenNet-l3i5 (l_max 3, 5 interaction layers; slower, and
more accurate on Matbench Discovery: F1 0.760).

The checkpoints ship inside the ``sevenn`` wheel (``sevenn/pretrained_potentials``). We
pass their paths rather than sevenn's model names: a name sevenn cannot find locally it
would try to download.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from materialabs.mlip.base import AsePotential, prepare_torch

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

# our name -> the checkpoint's folder under sevenn/pretrained_potentials
CHECKPOINTS = {
    "sevennet-0": ("SevenNet_0__11Jul2024", "checkpoint_sevennet_0.pth"),
    "sevennet-l3i5": ("SevenNet_l3i5", "checkpoint_l3i5.pth"),
}


def checkpoint_path(name: str) -> Path:
    import sevenn

    folder, file = CHECKPOINTS[name]
    path = Path(sevenn.__file__).resolve().parent / "pretrained_potentials" / folder / file
    if not path.is_file():
        raise FileNotFoundError(f"{name}: checkpoint {path} is missing from the installed "
                                f"sevenn wheel; expected it to ship with sevenn 0.13")
    return path


@cache
def _calculator(name: str) -> Calculator:
    prepare_torch()
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        # torch.jit deprecation and "no tensor-product accelerator" (there is none on CPU)
        warnings.simplefilter("ignore")
        return SevenNetCalculator(str(checkpoint_path(name)), device="cpu")


class SevenNetPotential(AsePotential):
    def __init__(self, name: str = "sevennet-0") -> None:
        if name not in CHECKPOINTS:
            raise ValueError(f"SevenNet model {name!r}: expected one of "
                             f"{', '.join(sorted(CHECKPOINTS))}")
        super().__init__()
        self.name = name

    def calculator(self) -> Calculator:
        return _calculator(self.name)
