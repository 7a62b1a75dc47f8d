"""The learned temporal models: causality, receptive field, streaming == whole-sequence pass."""

from pathlib import Path

import pytest
import torch
import yaml

from beatgrid.models.losses import make_loss
from beatgrid.models.ltm import GRUTemporalModel, TCNState, TemporalConvNet, ltm_model_config

torch.set_num_threads(1)

CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"


def _model(kind: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    model = TemporalConvNet(**kwargs) if kind == "tcn" else GRUTemporalModel(**kwargs)
    return model.eval()


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("tcn", {}),  # the config defaults: RF 253 frames
        ("tcn", {"kernel_size": 2, "n_layers": 3, "channels": 8}),
        ("tcn", {"kernel_size": 3, "n_layers": 1, "channels": 4}),
        ("gru", {}),
        ("gru", {"hidden": 16, "n_layers": 1}),
    ],
)
def test_frame_by_frame_equals_whole_sequence(kind, kwargs):
    """madmom-style online test: stepping one frame at a time gives the causal pass's logits."""
    model = _model(kind, **kwargs)
    x = torch.rand(2, 300, 2)
    x[0, 50:60] = 1.0  # saturated inputs too
    with torch.no_grad():
        whole = model(x)
        state = model.init_state(batch=2)
        steps = []
        for t in range(x.shape[1]):
            logits, state = model.step(x[:, t], state)
            steps.append(logits)
    assert whole.shape == (2, 300, 2)
    torch.testing.assert_close(torch.stack(steps, dim=1), whole, atol=1e-5, rtol=0)


def test_state_is_per_stream():
    """Two streams interleaved through two states do not leak into each other."""
    model = _model("tcn", kernel_size=3, n_layers=3, channels=8)
    a, b = torch.rand(1, 40, 2), torch.rand(1, 40, 2)
    with torch.no_grad():
        sa, sb = model.init_state(), model.init_state()
        out_a = []
        for t in range(40):
            logits, sa = model.step(a[:, t], sa)
            _, sb = model.step(b[:, t], sb)
            out_a.append(logits)
        torch.testing.assert_close(torch.stack(out_a, 1), model(a), atol=1e-5, rtol=0)
    assert isinstance(sa, TCNState) and sa.n_frames == 40


@pytest.mark.parametrize("kind", ["tcn", "gru"])
def test_output_is_causal(kind):
    model = _model(kind)
    x = torch.rand(1, 200, 2)
    changed = x.clone()
    changed[0, 120:] = torch.rand(80, 2)
    with torch.no_grad():
        y, y_changed = model(x), model(changed)
    torch.testing.assert_close(y[0, :120], y_changed[0, :120], atol=0, rtol=0)
    assert not torch.allclose(y[0, 120], y_changed[0, 120])


def test_receptive_field_matches_config_formula():
    """The config's TCN (dilations 1..2^(n-1)) sees 1 + (k-1)(2^n - 1) frames."""
    cfg = yaml.safe_load(CONFIG.read_text())["ltm"]
    kind, model_config = ltm_model_config({**cfg, "kind": "tcn"})
    model = TemporalConvNet(**model_config)
    k, n = cfg["kernel_size"], cfg["n_layers"]
    assert model.receptive_field == 1 + (k - 1) * (2**n - 1)


@pytest.mark.parametrize("kernel_size, n_layers", [(5, 6), (2, 4), (3, 2)])
def test_receptive_field_by_perturbation(kernel_size, n_layers):
    """Input frame t - RF + 1 changes the output at t; frame t - RF (and earlier) does not.

    float64, because the one path from the oldest frame through every layer's oldest tap
    carries a tiny contribution that float32 can round away.
    """
    model = _model("tcn", kernel_size=kernel_size, n_layers=n_layers, channels=8).double()
    rf = model.receptive_field
    t = rf + 20
    x = torch.rand(1, t + 5, 2, dtype=torch.float64) * 0.8 + 0.1

    def output_at_t(frame: int) -> torch.Tensor:
        perturbed = x.clone()
        perturbed[0, frame] = 1.0 - perturbed[0, frame]
        with torch.no_grad():
            return model(perturbed)[0, t]

    with torch.no_grad():
        reference = model(x)[0, t]
    assert not torch.equal(output_at_t(t - rf + 1), reference)
    torch.testing.assert_close(output_at_t(t - rf), reference, atol=0, rtol=0)
    torch.testing.assert_close(output_at_t(t - rf - 3), reference, atol=0, rtol=0)


def test_gru_has_unbounded_memory():
    assert GRUTemporalModel().receptive_field is None


def test_inputs_are_probabilities():
    """Inputs outside [0, 1] are clamped, so a logit-valued store cannot blow up the model."""
    model = _model("tcn", kernel_size=3, n_layers=2, channels=4)
    x = torch.rand(1, 30, 2)
    wild = x.clone()
    wild[0, 10] = torch.tensor([7.0, -3.0])
    clamped = wild.clamp(0, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(wild), model(clamped))


def test_ltm_model_config():
    kind, tcn = ltm_model_config({"kind": "tcn", "channels": 16, "kernel_size": 3, "n_layers": 4, "dropout": 0.2})
    assert kind == "tcn"
    assert TemporalConvNet(**tcn).receptive_field == 1 + 2 * 15
    kind, gru = ltm_model_config({"kind": "gru", "gru_hidden": 24, "n_layers": 6})
    model = GRUTemporalModel(**gru)
    assert kind == "gru" and model.gru.hidden_size == 24 and model.gru.num_layers == 2
    with pytest.raises(ValueError, match="unknown LTM kind"):
        ltm_model_config({"kind": "transformer"})


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="kernel_size"):
        TemporalConvNet(kernel_size=1)
    with pytest.raises(ValueError, match="n_layers"):
        TemporalConvNet(n_layers=0)


@pytest.mark.parametrize("kind", ["tcn", "gru"])
@pytest.mark.parametrize("loss_name", ["bce", "shift_tolerant"])
def test_padding_changes_neither_loss_nor_gradients(kind, loss_name):
    """The trainer's masked loss over a padded LTM batch: padded frames (inputs and
    targets) do not matter, because the loss masks them and the model is causal."""
    model = _model(kind, **({"channels": 8} if kind == "tcn" else {"hidden": 8}))
    loss_fn = make_loss(loss_name, pos_weight=[5.0, 20.0])
    lengths = torch.tensor([120, 70])
    x = torch.rand(2, 120, 2)
    y = (torch.rand(2, 120, 2) > 0.9).float()

    def loss_and_grads(x, y):
        model.zero_grad()
        loss = loss_fn(model(x), y, lengths)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    loss, grads = loss_and_grads(x, y)
    x_pad, y_pad = x.clone(), y.clone()
    x_pad[1, 70:] = torch.rand(50, 2)
    y_pad[1, 70:] = 1.0
    loss_pad, grads_pad = loss_and_grads(x_pad, y_pad)
    torch.testing.assert_close(loss_pad, loss, atol=0, rtol=0)
    for g, g_pad in zip(grads, grads_pad):
        torch.testing.assert_close(g_pad, g, atol=1e-7, rtol=1e-6)
    # ... while a change inside the valid frames does change the loss.
    x_valid = x.clone()
    x_valid[1, 30:40] = 1.0 - x_valid[1, 30:40]
    assert not torch.equal(loss_and_grads(x_valid, y)[0], loss)
