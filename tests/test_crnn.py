"""The CRNN: frame count kept, causality, streaming == one pass, padding-exact batches."""

import numpy as np
import pytest
import torch

from beatgrid.models.crnn import CRNN

torch.set_num_threads(1)

SMALL = dict(n_mels=24, conv_channels=(4, 8), rnn_hidden=8, rnn_layers=2, dropout=0.1)


def _model(**kwargs) -> CRNN:
    torch.manual_seed(0)
    model = CRNN(**{**SMALL, **kwargs})
    # Non-trivial BatchNorm statistics, so eval-mode normalisation is not the identity.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("n_frames", [1, 2, 7, 400])
@pytest.mark.parametrize("causal", [False, True])
def test_frames_out_equal_frames_in(n_frames, causal):
    model = _model(causal=causal)
    with torch.no_grad():
        out = model(torch.rand(2, n_frames, SMALL["n_mels"]))
    assert out.shape == (2, n_frames, 2)


def test_default_sizes_build_and_run():
    model = CRNN().eval()  # the config defaults: 128 mels
    with torch.no_grad():
        out = model(torch.rand(1, 50, 128))
    assert out.shape == (1, 50, 2)
    assert torch.isfinite(out).all()


def test_causal_output_ignores_the_future():
    """Output at frame t must not change when frames after t change; the offline model
    (the negative control) does look ahead."""
    x = torch.rand(1, 120, SMALL["n_mels"])
    changed = x.clone()
    changed[:, 60:] = torch.rand(1, 60, SMALL["n_mels"]) * 5
    for causal in (True, False):
        model = _model(causal=causal)
        with torch.no_grad():
            a, b = model(x), model(changed)
        if causal:
            torch.testing.assert_close(a[:, :60], b[:, :60], rtol=0, atol=1e-6)
        else:
            assert not torch.allclose(a[:, :60], b[:, :60], atol=1e-4)
        assert not torch.allclose(a[:, 60:], b[:, 60:], atol=1e-4)


@pytest.mark.parametrize("chunks", [[1] * 30, [5, 1, 13, 11], [30]])
def test_causal_step_in_chunks_equals_forward(chunks):
    model = _model(causal=True)
    x = torch.rand(2, sum(chunks), SMALL["n_mels"])
    with torch.no_grad():
        whole = model(x)
        state = model.init_state(batch_size=2)
        pieces, start = [], 0
        for size in chunks:
            logits, state = model.step(x[:, start:start + size], state)
            pieces.append(logits)
            start += size
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=0, atol=1e-5)


def test_step_needs_a_causal_model():
    with pytest.raises(RuntimeError, match="causal"):
        _model(causal=False).init_state()


@pytest.mark.parametrize("causal", [False, True])
def test_padded_batch_with_lengths_equals_tracks_alone(causal):
    """With lengths, padding (whatever its values) changes no valid frame's output."""
    model = _model(causal=causal)
    lengths = torch.tensor([50, 31, 12])
    tracks = [torch.rand(1, n, SMALL["n_mels"]) for n in lengths.tolist()]
    batch = torch.randn(3, 50, SMALL["n_mels"]) * 10  # padding full of junk
    for row, track in enumerate(tracks):
        batch[row, :track.shape[1]] = track[0]
    with torch.no_grad():
        batched = model(batch, lengths)
        for row, track in enumerate(tracks):
            alone = model(track)
            torch.testing.assert_close(batched[row, :track.shape[1]], alone[0], rtol=0, atol=1e-5)


def test_input_norm_is_applied_and_stored():
    model = _model()
    x = torch.rand(1, 40, SMALL["n_mels"]) * 3 + 1
    mean = np.full(SMALL["n_mels"], 1.0, dtype=np.float32)
    std = np.full(SMALL["n_mels"], 2.0, dtype=np.float32)
    with torch.no_grad():
        raw = model((x - 1.0) / 2.0)
        model.set_input_norm(mean, std)
        normalised = model(x)
    torch.testing.assert_close(normalised, raw)
    assert "input_mean" in model.state_dict() and "input_std" in model.state_dict()
    assert model.input_norm()["std"] == pytest.approx([2.0] * SMALL["n_mels"])


def test_bad_inputs_raise():
    model = _model()
    with pytest.raises(ValueError, match="24"):
        model(torch.rand(1, 10, 25))
    with pytest.raises(ValueError, match="bands"):
        model.set_input_norm(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        model.set_input_norm(np.zeros(24), np.zeros(24))
    with pytest.raises(ValueError, match="dropout"):
        CRNN(dropout=1.0)


def test_gradients_reach_every_parameter():
    model = _model()
    model.train()
    model(torch.rand(2, 30, SMALL["n_mels"])).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing
