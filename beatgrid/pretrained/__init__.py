"""The shipped pretrained models: synthetic-only CRNN + LTM pairs inside the package.

Each model lives in ``beatgrid/pretrained/<name>/`` as ``crnn/model.pt``, ``ltm/model.pt``
and ``MODEL_CARD.md``, trained by ``configs/pretrain.yaml`` on music the workflow
synthesizes itself (no third-party recording). Files are found through
:mod:`importlib.resources`, so they work from an installed wheel as from a checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DEFAULT_NAME", "PREFIX", "PretrainedModelError", "available", "models_dir",
           "resolve_model_file"]

#: The model ``beatgrid predict`` uses when no ``--models`` is given.
DEFAULT_NAME = "synth-v2"
#: ``crnn.init_from: pretrained:<name>`` (and ``--models pretrained:<name>``) names a shipped model.
PREFIX = "pretrained:"


class PretrainedModelError(FileNotFoundError):
    """A shipped model that does not exist in this installation; the message lists those that do."""


def _package_root() -> Path:
    root = resources.files(__name__)
    if not isinstance(root, Path):  # a zipped install: no directory to hand out
        raise PretrainedModelError(f"beatgrid is installed as a zip ({root}); install it unzipped to use "
                                   "the shipped models")
    return root


def available() -> list[str]:
    """Names of the shipped models that hold a CRNN (sorted)."""
    root = _package_root()
    return sorted(p.name for p in root.iterdir() if (p / "crnn" / "model.pt").is_file())


def models_dir(name: str | None = None) -> Path:
    """The folder of shipped model ``name`` (default :data:`DEFAULT_NAME`), usable as ``--models``.

    It holds ``crnn/model.pt`` and ``ltm/model.pt``. Raises :class:`PretrainedModelError`
    naming the models that exist when ``name`` is not shipped.
    """
    name = (name or DEFAULT_NAME).removeprefix(PREFIX)
    folder = _package_root() / name
    if not (folder / "crnn" / "model.pt").is_file():
        shipped = ", ".join(available()) or "none"
        raise PretrainedModelError(f"no shipped model {name!r} in {_package_root()} (shipped: {shipped})")
    return folder


def resolve_model_file(spec: str | Path, kind: str) -> Path:
    """The ``model.pt`` that ``spec`` names for model ``kind`` (``crnn`` or ``ltm``).

    ``spec`` is ``pretrained:<name>`` (a shipped model), a folder holding ``<kind>/model.pt``,
    or a ``model.pt`` path itself (returned unchanged, existing or not, so the caller's
    loader reports a missing file with its own message).
    """
    text = str(spec)
    if text.startswith(PREFIX):
        return models_dir(text) / kind / "model.pt"
    path = Path(text)
    if path.is_dir():
        return path / kind / "model.pt"
    return path
