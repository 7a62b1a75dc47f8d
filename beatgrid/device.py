"""The torch device a computation runs on, from a config's ``device`` key."""

from __future__ import annotations

import torch

from .errors import DeviceUnavailableError

__all__ = ["resolve_device"]


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU.

    Raises:
        DeviceUnavailableError: CUDA or MPS asked for and absent (a CPU-only torch build,
            no GPU or driver), or a device name torch does not know.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        build = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise DeviceUnavailableError(f"device {device!r} requested but {build} "
                                     "(use device auto or cpu)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError("device 'mps' requested but MPS is not available")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise DeviceUnavailableError(f"unknown device {device!r} (use auto, cpu or cuda)") from exc
