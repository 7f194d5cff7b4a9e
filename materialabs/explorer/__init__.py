"""The web explorer: static pages (HTML, CSS, JavaScript modules) the gateway serves at
``/explorer``. Everything the browser needs ships in ``static/``; no page fetches anything
from outside the gateway, so the explorer works on a machine with no internet."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).with_name("static")

__all__ = ["STATIC"]
