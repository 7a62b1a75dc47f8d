"""beatgrid: beat, downbeat and beatgrid tracking (CRNN + learned temporal model)."""

__version__ = "0.1.0"
