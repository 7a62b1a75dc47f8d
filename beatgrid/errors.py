"""Errors about the user's input files: each names the file and the problem."""

from __future__ import annotations

import os


class InputFileError(ValueError):
    """An input file is unusable.

    ``path`` is the file, ``problem`` a short human-readable description that can be
    shown on its own (the index writes it to ``rejected.csv`` as the reason).
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(str(path), problem)
        self.path = str(path)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class UsageError(ValueError):
    """An argument that cannot work (a range, a method, an option combination); the message
    names the argument and why. The command line reports it before reading any input."""


class ModelFileError(RuntimeError):
    """A model.pt that cannot be found, read or rebuilt; the message names the file."""


class DeviceUnavailableError(RuntimeError):
    """A compute device was asked for that this torch build or machine does not have."""
