"""Learned Temporal Model (LTM): causal models over frame-wise beat activations.

Both models map CRNN activations ``[B, T, 2]`` (column 0 beat, column 1 downbeat
probability, at the CRNN's ``fps``) to beat/downbeat *logits* ``[B, T, 2]`` at the
same frame rate. They are strictly causal: the output at frame ``t`` depends only on
input frames ``<= t``. Each model has two equivalent ways to run:

- ``forward(x)``: the whole sequence at once (training, offline inference);
- ``init_state(batch)`` / ``step(x_t, state)``: one frame at a time for streaming.
  In ``eval()`` mode, stepping frame by frame gives the same logits as ``forward``
  to float32 rounding (tested to 1e-5).

Input representation: the models take the activation *probabilities* ``p`` in
[0, 1] as they are stored, not ``logit(p)``. An overconfident CRNN writes ``p`` values
of 1e-7 on its own training tracks; their logits (-16) would dominate a small
network and differ wildly between training and test tracks, while ``p`` is bounded
and the first layer (a learned affine map) can still sharpen or flatten it.
Inputs are clamped to [0, 1].
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "TemporalConvNet",
    "GRUTemporalModel",
    "TCNState",
    "ltm_model_config",
    "LTM_KINDS",
]

LTM_KINDS = ("tcn", "gru")


@dataclass
class TCNState:
    """Streaming state of a :class:`TemporalConvNet`.

    ``buffers[i]`` is layer ``i``'s ring buffer ``[B, channels, (kernel_size-1)*dilation]``
    of its most recent inputs; ``n_frames`` counts the frames stepped so far and sets
    every ring buffer's write position (``n_frames mod buffer length``).
    """

    buffers: list[torch.Tensor]
    n_frames: int = 0


class _CausalResidualBlock(nn.Module):
    """``x + pointwise(dropout(gelu(dilated_causal_conv(x))))`` on ``[B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.context = (kernel_size - 1) * dilation  # past frames this layer needs
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        # Ring-buffer positions of the k-1 past taps, for each write position:
        # taps[p] = [p, p+d, ..., p+(k-2)d] mod context (oldest first).
        pos = torch.arange(self.context)[:, None]
        offsets = torch.arange(kernel_size - 1)[None, :] * dilation
        self.register_buffer("_taps", (pos + offsets) % self.context, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.pad(x, (self.context, 0)))  # left-only (causal) zero padding
        return x + self.pointwise(self.dropout(F.gelu(h)))

    def step(self, x_t: torch.Tensor, buffer: torch.Tensor, n_frames: int) -> torch.Tensor:
        """One frame ``x_t [B, C]``; updates ``buffer [B, C, context]`` in place."""
        write = n_frames % self.context
        past = buffer[:, :, self._taps[write]]  # [B, C, k-1], oldest first
        window = torch.cat([past, x_t[:, :, None]], dim=2)  # [B, C, k]
        # The convolution at one output frame is a dense layer over the flattened window.
        h = F.linear(window.flatten(1), self.conv.weight.flatten(1), self.conv.bias)
        buffer[:, :, write] = x_t  # overwrite the oldest input with the newest
        h = F.linear(self.dropout(F.gelu(h)), self.pointwise.weight[:, :, 0], self.pointwise.bias)
        return x_t + h


class TemporalConvNet(nn.Module):
    """Causal dilated residual TCN: activations ``[B, T, in_channels]`` -> logits ``[B, T, 2]``.

    A pointwise input layer lifts the activations to ``channels``; then ``n_layers``
    residual blocks, block ``i`` holding one causal convolution with dilation ``2**i``
    (left-only zero padding), GELU, dropout and a pointwise convolution; a pointwise
    output layer gives the beat and downbeat logits.

    Args:
        in_channels: input features per frame (2: beat, downbeat probability).
        channels: hidden channels.
        kernel_size: taps of each dilated convolution (>= 2).
        n_layers: residual blocks; dilations 1, 2, 4, ..., 2**(n_layers-1).
        dropout: dropout rate inside each block (training only).
    """

    def __init__(
        self,
        in_channels: int = 2,
        channels: int = 32,
        kernel_size: int = 5,
        n_layers: int = 6,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2, got {kernel_size}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_channels = in_channels
        self.kernel_size = kernel_size
        self.dilations = [2**i for i in range(n_layers)]
        self.input = nn.Conv1d(in_channels, channels, 1)
        self.blocks = nn.ModuleList(
            _CausalResidualBlock(channels, kernel_size, d, dropout) for d in self.dilations
        )
        self.output = nn.Conv1d(channels, 2, 1)

    @property
    def receptive_field(self) -> int:
        """Input frames that influence one output frame: ``1 + (k-1) * sum(dilations)``."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whole-sequence causal pass: ``x [B, T, in_channels]`` -> logits ``[B, T, 2]``."""
        h = self.input(x.clamp(0.0, 1.0).transpose(1, 2))
        for block in self.blocks:
            h = block(h)
        return self.output(h).transpose(1, 2)

    def init_state(self, batch: int = 1) -> TCNState:
        """Zero ring buffers, equivalent to the causal zero padding of :meth:`forward`."""
        weight = self.input.weight
        buffers = [
            torch.zeros(batch, weight.shape[0], b.context, dtype=weight.dtype, device=weight.device)
            for b in self.blocks
        ]
        return TCNState(buffers=buffers, n_frames=0)

    def step(self, x_t: torch.Tensor, state: TCNState) -> tuple[torch.Tensor, TCNState]:
        """One frame ``x_t [B, in_channels]`` -> (logits ``[B, 2]``, updated state).

        The state's buffers are updated in place; the returned state is the same object.
        """
        h = F.linear(x_t.clamp(0.0, 1.0), self.input.weight[:, :, 0], self.input.bias)
        for block, buffer in zip(self.blocks, state.buffers):
            h = block.step(h, buffer, state.n_frames)
        state.n_frames += 1
        return F.linear(h, self.output.weight[:, :, 0], self.output.bias), state


class GRUTemporalModel(nn.Module):
    """Unidirectional GRU: activations ``[B, T, in_channels]`` -> logits ``[B, T, 2]``.

    Its memory is unbounded (``receptive_field`` is ``None``); the streaming state is
    the GRU hidden state ``[n_layers, B, hidden]``.

    Args:
        in_channels: input features per frame (2: beat, downbeat probability).
        hidden: GRU hidden units per layer.
        n_layers: stacked GRU layers.
        dropout: dropout between GRU layers (training only; ignored for one layer).
    """

    def __init__(
        self,
        in_channels: int = 2,
        hidden: int = 64,
        n_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.gru = nn.GRU(
            in_channels,
            hidden,
            num_layers=n_layers,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.output = nn.Linear(hidden, 2)

    receptive_field = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whole-sequence causal pass: ``x [B, T, in_channels]`` -> logits ``[B, T, 2]``."""
        h, _ = self.gru(x.clamp(0.0, 1.0))
        return self.output(h)

    def init_state(self, batch: int = 1) -> torch.Tensor:
        """Zero hidden state ``[n_layers, batch, hidden]``."""
        weight = self.output.weight
        return torch.zeros(
            self.gru.num_layers, batch, self.gru.hidden_size, dtype=weight.dtype, device=weight.device
        )

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame ``x_t [B, in_channels]`` -> (logits ``[B, 2]``, new hidden state)."""
        h, state = self.gru(x_t.clamp(0.0, 1.0)[:, None, :], state)
        return self.output(h[:, 0]), state


def _defaults(model_class: type[nn.Module]) -> dict[str, Any]:
    """A model constructor's keyword arguments with their defaults, in signature order."""
    parameters = inspect.signature(model_class).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


#: config.yaml ``ltm:`` key -> constructor kwarg, per kind (``n_layers`` sizes the TCN only).
_CONFIG_KEYS = {
    "tcn": {"channels": "channels", "kernel_size": "kernel_size", "n_layers": "n_layers", "dropout": "dropout"},
    "gru": {"gru_hidden": "hidden", "gru_layers": "n_layers", "dropout": "dropout"},
}
_LTM_CLASSES: dict[str, type[nn.Module]] = {"tcn": TemporalConvNet, "gru": GRUTemporalModel}


def ltm_model_config(ltm_cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Map config.yaml's ``ltm:`` block to ``(kind, model constructor kwargs)``.

    ``tcn`` uses ``channels``, ``kernel_size``, ``n_layers``, ``dropout``; ``gru`` uses
    ``gru_hidden``, ``gru_layers`` and ``dropout``. Every constructor kwarg is listed; a key
    the block lacks takes the constructor's default (its one home).
    """
    kind = ltm_cfg.get("kind", "tcn")
    if kind not in LTM_KINDS:
        raise ValueError(f"unknown LTM kind {kind!r}; expected one of {LTM_KINDS}")
    config = _defaults(_LTM_CLASSES[kind])
    for key, kwarg in _CONFIG_KEYS[kind].items():
        if key in ltm_cfg:
            config[kwarg] = type(config[kwarg])(ltm_cfg[key])  # cast as the default is typed
    return kind, config
