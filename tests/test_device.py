"""resolve_device: the device a config names, or one clear error."""

import pytest
import torch

from beatgrid.device import resolve_device
from beatgrid.errors import DeviceUnavailableError


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_an_absent_or_unknown_device_is_one_clear_error():
    with pytest.raises(DeviceUnavailableError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="'cuda:1' requested"):
            resolve_device("cuda:1")
