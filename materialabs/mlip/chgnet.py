"""CHGNet 0.3.0 (Deng et al., Nat. Mach. Intell. 2023), trained on MPtrj.

The weights ship inside the ``chgnet`` wheel (``chgnet/pretrained/0.3.0``); loading reads
them from there and never touches the network.
"""

from __future__ import annotations

import contextlib
import io
from functools import lru_cache
from typing import TYPE_CHECKING

from materialabs.mlip.base import AsePotential, prepare_torch

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

MODEL_VERSION = "0.3.0"


@lru_cache(maxsize=1)
def _calculator() -> Calculator:
    """One model per process: loading costs ~2 s and ~2 MB of weights."""
    prepare_torch()
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device and size
        model = CHGNet.load(model_name=MODEL_VERSION, use_device="cpu", verbose=False)
        return CHGNetCalculator(model, use_device="cpu")


class ChgnetPotential(AsePotential):
    name = "chgnet"

    def calculator(self) -> Calculator:
        return _calculator()
