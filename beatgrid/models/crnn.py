"""CRNN over log-mel spectrograms: beat and downbeat logits per frame.

A small convolutional front end summarises each frame's spectrum (pooling only
along frequency, so the frame rate is kept), then a recurrent layer models time.
The offline variant uses a bidirectional LSTM and convolutions centred in time; the
causal variant (``causal=True``) pads its convolutions on the past side only and
uses a unidirectional LSTM, so the output at frame ``t`` depends on frames ``<= t``
only, and long inputs can be processed chunk by chunk with :meth:`CRNN.step`.

Input normalisation (per-band mean and standard deviation of the training data, e.g.
from :class:`beatgrid.data.dataset.MelNormalizer`) is stored in the module as buffers
(:meth:`CRNN.set_input_norm`), so a saved ``state_dict`` carries it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["CRNN", "CRNNState", "length_mask"]

#: Kernel size of every convolution, (time frames, mel bands).
KERNEL_SIZE = (3, 3)

# State of a causal CRNN between chunks: the last (kernel_t - 1) input frames of
# every convolution, and the LSTM's (h, c).
CRNNState = tuple[list[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def length_mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Boolean mask ``[B, n_frames]``: True on the first ``lengths[b]`` frames of row b."""
    frames = torch.arange(n_frames, device=lengths.device)
    return frames.unsqueeze(0) < lengths.to(frames.device).unsqueeze(1)


class _ConvBlock(nn.Module):
    """Conv2d over (time, mel) -> BatchNorm -> ReLU -> max-pool along frequency -> dropout."""

    def __init__(self, in_channels: int, out_channels: int, freq_pool: int, dropout: float,
                 causal: bool) -> None:
        super().__init__()
        kt, kf = KERNEL_SIZE
        self.causal = causal
        self.context_frames = kt - 1
        # Time padding is done by hand (past side only when causal); frequency is zero-padded.
        self.conv = nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, padding=(0, kf // 2),
                              bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.freq_pool = freq_pool
        self.dropout = nn.Dropout(dropout)

    def pad_time(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad ``x`` [B, C, T, F] in time so the convolution keeps T frames."""
        if self.causal:
            return F.pad(x, (0, 0, self.context_frames, 0))
        half = self.context_frames // 2
        return F.pad(x, (0, 0, half, self.context_frames - half))

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` that already carries its time context."""
        x = torch.relu(self.norm(self.conv(x)))
        if self.freq_pool > 1:
            x = F.max_pool2d(x, kernel_size=(1, self.freq_pool))
        return self.dropout(x)


class CRNN(nn.Module):
    """Convolutional-recurrent beat and downbeat tracker over log-mel frames.

    Args:
        n_mels: mel bands per input frame.
        conv_channels: output channels of each convolution block (3x3 kernels).
        rnn_hidden: LSTM hidden units (per direction).
        rnn_layers: stacked LSTM layers.
        dropout: dropout after each convolution block, between LSTM layers and
            before the output layer.
        causal: no look-ahead: past-padded convolutions and a unidirectional LSTM.
        freq_pool: max-pool factor along frequency after each block; a block whose
            input has fewer bands than ``freq_pool`` does not pool.

    ``forward(mel [B, T, n_mels], lengths [B] | None) -> logits [B, T, 2]``
    (column 0 beat, column 1 downbeat). With ``lengths``, frames past a row's
    length are treated as absent: the convolutions see zeros there, and in eval mode
    the BiLSTM runs on packed sequences, so a padded batch gives each track exactly
    the output it gets alone. In training mode the BiLSTM runs over the padding
    instead (its backward pass on packed sequences of unequal lengths is ~8x slower
    on CPU); the loss ignores padded frames, and only the last frames of a padded
    row see the padding as silence after the end.
    """

    n_outputs = 2

    def __init__(
        self,
        n_mels: int = 128,
        conv_channels: Sequence[int] = (16, 32, 64),
        rnn_hidden: int = 64,
        rnn_layers: int = 2,
        dropout: float = 0.15,
        causal: bool = False,
        freq_pool: int = 4,
    ) -> None:
        super().__init__()
        if n_mels < 1 or not conv_channels or rnn_hidden < 1 or rnn_layers < 1:
            raise ValueError(
                f"invalid CRNN sizes: n_mels={n_mels}, conv_channels={conv_channels}, "
                f"rnn_hidden={rnn_hidden}, rnn_layers={rnn_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_mels = int(n_mels)
        self.causal = bool(causal)
        self.config = {
            "n_mels": int(n_mels), "conv_channels": [int(c) for c in conv_channels],
            "rnn_hidden": int(rnn_hidden), "rnn_layers": int(rnn_layers),
            "dropout": float(dropout), "causal": bool(causal), "freq_pool": int(freq_pool),
        }

        blocks = []
        in_channels, n_bands = 1, self.n_mels
        for out_channels in conv_channels:
            pool = freq_pool if n_bands >= freq_pool else 1
            blocks.append(_ConvBlock(in_channels, int(out_channels), pool, dropout, self.causal))
            in_channels, n_bands = int(out_channels), n_bands // pool
        self.blocks = nn.ModuleList(blocks)
        self.rnn_input_size = in_channels * n_bands

        self.rnn = nn.LSTM(
            self.rnn_input_size, rnn_hidden, num_layers=rnn_layers, batch_first=True,
            bidirectional=not self.causal, dropout=dropout if rnn_layers > 1 else 0.0)
        self.head_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(rnn_hidden * (1 if self.causal else 2), self.n_outputs)

        self.register_buffer("input_mean", torch.zeros(self.n_mels))
        self.register_buffer("input_std", torch.ones(self.n_mels))

    # ------------------------------------------------------------------ normalisation
    def set_input_norm(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Store the per-band mean and std [n_mels] applied to every input frame."""
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(-1)
        std = torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(-1)
        if mean.numel() != self.n_mels or std.numel() != self.n_mels:
            raise ValueError(f"input norm needs {self.n_mels} bands, got mean "
                             f"{mean.numel()} and std {std.numel()}")
        if not torch.all(std > 0):
            raise ValueError("input norm std must be positive in every band")
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)

    def input_norm(self) -> dict[str, list[float]]:
        """The stored normalisation as plain lists (for model.pt metadata)."""
        return {"mean": self.input_mean.tolist(), "std": self.input_std.tolist()}

    def _normalise(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[-1] != self.n_mels:
            raise ValueError(f"CRNN expects [B, T, {self.n_mels}] mel frames, got "
                             f"{tuple(mel.shape)}")
        return (mel.float() - self.input_mean) / self.input_std

    # ------------------------------------------------------------------ offline pass
    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, T, 2] for mel frames [B, T, n_mels]; ``lengths`` [B] masks padding."""
        x = self._normalise(mel)
        n_frames = x.shape[1]
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths).to(torch.long).cpu()
            mask = length_mask(lengths.to(x.device), n_frames)
        x = x.unsqueeze(1)  # [B, 1, T, F]
        for block in self.blocks:
            if mask is not None:  # padded frames read as silence-after-the-end (zeros)
                x = x * mask[:, None, :, None].to(x.dtype)
            x = block.forward_padded(block.pad_time(x))
        x = self._frames(x)
        if mask is not None and not self.causal and not self.training:
            packed = pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True,
                                          enforce_sorted=False)
            out, _ = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=n_frames)
        else:
            out, _ = self.rnn(x)
        return self.head(self.head_dropout(out))

    @staticmethod
    def _frames(x: torch.Tensor) -> torch.Tensor:
        """[B, C, T, F] feature maps -> [B, T, C*F] frame vectors."""
        b, c, t, f = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, t, c * f)

    # ------------------------------------------------------------------ streaming
    def init_state(self, batch_size: int = 1, device: torch.device | str | None = None) -> CRNNState:
        """Zero state for :meth:`step` (equivalent to silence before the first frame)."""
        if not self.causal:
            raise RuntimeError("streaming needs a causal CRNN (causal=True)")
        device = self.input_mean.device if device is None else torch.device(device)
        contexts = []
        n_bands, in_channels = self.n_mels, 1
        for block in self.blocks:
            contexts.append(torch.zeros(batch_size, in_channels, block.context_frames, n_bands,
                                        device=device))
            in_channels = block.conv.out_channels
            n_bands //= block.freq_pool
        shape = (self.rnn.num_layers, batch_size, self.rnn.hidden_size)
        return contexts, (torch.zeros(shape, device=device), torch.zeros(shape, device=device))

    def step(self, mel: torch.Tensor, state: CRNNState | None = None) -> tuple[torch.Tensor, CRNNState]:
        """Process the next frames [B, t, n_mels] (t >= 1) of a stream.

        Returns (logits [B, t, 2], new state). Feeding a sequence chunk by chunk gives
        the same logits as one ``forward`` over the whole sequence.
        """
        if state is None:
            state = self.init_state(mel.shape[0], mel.device)
        contexts, rnn_state = state
        x = self._normalise(mel).unsqueeze(1)
        new_contexts = []
        for block, context in zip(self.blocks, contexts):
            x = torch.cat([context.to(x.dtype), x], dim=2)
            new_contexts.append(x[:, :, x.shape[2] - block.context_frames:])
            x = block.forward_padded(x)
        out, rnn_state = self.rnn(self._frames(x), rnn_state)
        return self.head(self.head_dropout(out)), (new_contexts, rnn_state)

    @property
    def receptive_field_past(self) -> int:
        """Frames of past context the convolutions see (the LSTM sees all of the past)."""
        return sum(block.context_frames for block in self.blocks)
