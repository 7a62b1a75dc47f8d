"""beatgrid: beat, downbeat and beatgrid tracking (CRNN + learned temporal model).

``beatgrid.analyze(path_or_array, sr=None, models=None, method="crnn_dbn") -> Analysis``
gives the beats, downbeats and beatgrid of one recording (see :mod:`beatgrid.analysis`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Analysis", "analyze", "__version__"]

if TYPE_CHECKING:
    from .analysis import Analysis, analyze


def __getattr__(name: str) -> Any:
    """``analyze`` and ``Analysis`` on first use, so ``import beatgrid`` stays cheap (no torch)."""
    if name in ("analyze", "Analysis"):
        from . import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'beatgrid' has no attribute {name!r}")
