"""Activation augmentation and simulated CRNN activations."""

from dataclasses import replace

import mir_eval
import numpy as np
import pytest
from scipy.signal import find_peaks

from beatgrid.data.activation_augment import ActivationAugment, simulate_activations

FPS = 50.0
N_FRAMES = 1500
BEATS = np.arange(0.5, N_FRAMES / FPS - 0.5, 0.5)  # 120 BPM
DOWNBEATS = BEATS[::4]

#: Every operation off; tests switch on one at a time.
NOTHING = ActivationAugment(
    p_jitter=0, p_dropout=0, p_offbeat=0, p_spurious=0, p_downbeat_confusion=0, p_blur=0, p_gain=0, p_modulation=0, p_noise=0
)


def _clean(seed: int = 0) -> np.ndarray:
    """Overconfident activations: tall peaks exactly on the beats."""
    rng = np.random.default_rng(seed)
    return simulate_activations(
        BEATS, DOWNBEATS, N_FRAMES, FPS, rng, confidence=(0.95, 1.0), miss_rate=0, offbeat_rate=0,
        spurious_per_s=0, jitter_s=0, downbeat_miss_rate=0, downbeat_confusion_rate=0, noise_std=0,
    )


def _targets() -> np.ndarray:
    targets = np.zeros((N_FRAMES, 2), dtype=np.float32)
    targets[np.round(BEATS * FPS).astype(int), 0] = 1
    targets[np.round(DOWNBEATS * FPS).astype(int), 1] = 1
    return targets


def _beat_f(activation: np.ndarray) -> float:
    peaks, _ = find_peaks(activation, height=0.5, distance=10)
    return mir_eval.beat.f_measure(BEATS, peaks / FPS)


def test_output_contract_and_targets_untouched():
    act, targets = _clean(), _targets()
    out, out_targets = ActivationAugment(fps=FPS)(act, targets, np.random.default_rng(0))
    assert out.shape == act.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert out_targets is targets
    np.testing.assert_array_equal(act, _clean())  # input not modified in place


def test_reproducible_per_rng_and_random_across_rngs():
    act, targets = _clean(), _targets()
    augment = ActivationAugment(fps=FPS)
    a = augment(act, targets, np.random.default_rng(3))[0]
    b = augment(act, targets, np.random.default_rng(3))[0]
    np.testing.assert_array_equal(a, b)
    outputs = [augment(act, targets, np.random.default_rng(s))[0] for s in range(5)]
    assert len({o.tobytes() for o in outputs}) == 5


def test_all_off_is_identity():
    act = _clean()
    np.testing.assert_allclose(NOTHING(act, _targets(), np.random.default_rng(0))[0], act)


def test_jitter_moves_peaks_a_few_frames_and_keeps_them():
    act = _clean()
    out = replace(NOTHING, p_jitter=1, jitter_frames=1.5)(act, _targets(), np.random.default_rng(0))[0]
    before, _ = find_peaks(act[:, 0], height=0.5)
    after, _ = find_peaks(out[:, 0], height=0.5)
    assert len(after) == len(before)
    shifts = after - before
    assert np.abs(shifts).max() <= 3 and np.count_nonzero(shifts) > len(shifts) // 3
    # Downbeat peaks move with their beats.
    down_after, _ = find_peaks(out[:, 1], height=0.5)
    assert set(down_after) <= set(after)


def test_dropout_removes_peaks():
    act = _clean()
    augment = replace(NOTHING, p_dropout=1, dropout_fraction=(1.0, 1.0))
    out = augment(act, _targets(), np.random.default_rng(0))[0]
    assert out[:, 0].max() <= 0.3 * act[:, 0].max() + 1e-6
    assert len(find_peaks(out[:, 0], height=0.5)[0]) == 0


def test_spurious_peaks_add_false_positives():
    act = _clean()
    out = replace(NOTHING, p_spurious=1, spurious_per_s=(2.0, 2.0))(act, _targets(), np.random.default_rng(0))[0]
    n_before = len(find_peaks(act[:, 0], height=0.2)[0])
    n_after = len(find_peaks(out[:, 0], height=0.2)[0])
    assert n_after > n_before + 20  # ~60 expected at 2 per second over 30 s, some overlap beats
    assert np.all(out >= act - 1e-6)  # peaks are added, never subtracted


def test_offbeat_peaks_fall_between_beats():
    act = _clean()
    out = replace(NOTHING, p_offbeat=1, offbeat_fraction=(0.5, 0.5))(act, _targets(), np.random.default_rng(0))[0]
    beat_frames = np.round(BEATS * FPS).astype(int)
    new_peaks = np.setdiff1d(find_peaks(out[:, 0], height=0.15)[0], beat_frames)
    midpoints = (BEATS[:-1] + 0.25) * FPS
    assert 10 < len(new_peaks) < 45  # about half of the 57 midpoints
    assert np.abs(new_peaks[:, None] - midpoints[None, :]).min(axis=1).max() <= 0.5
    np.testing.assert_array_equal(out[:, 1], act[:, 1])


def test_downbeat_confusion_raises_downbeat_column_on_beats():
    act = _clean()
    out = replace(NOTHING, p_downbeat_confusion=1)(act, _targets(), np.random.default_rng(1))[0]
    non_downbeat_beats = np.setdiff1d(np.round(BEATS * FPS), np.round(DOWNBEATS * FPS)).astype(int)
    assert np.count_nonzero(out[non_downbeat_beats, 1] > 0.1) > 3
    np.testing.assert_array_equal(out[:, 0], act[:, 0])


def test_blur_gain_gamma_noise_lower_confidence():
    act = _clean()
    augment = replace(NOTHING, p_blur=1, p_gain=1, gain=(0.5, 0.5), gamma=(1.0, 1.0))
    out = augment(act, _targets(), np.random.default_rng(0))[0]
    assert out[:, 0].max() < 0.5 * act[:, 0].max()
    peaks_before, _ = find_peaks(act[:, 0], height=0.3)
    assert np.all(np.abs(find_peaks(out[:, 0], height=0.1)[0] - peaks_before) <= 1)  # blur keeps peaks in place
    noisy = replace(NOTHING, p_noise=1, noise_std=0.2)(act, _targets(), np.random.default_rng(0))[0]
    assert np.abs(noisy - act).mean() > 0.01


def test_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\[T, 2\]"):
        ActivationAugment()(np.zeros((10, 3)), np.zeros((10, 2)), np.random.default_rng(0))


def test_simulated_activations_clean_vs_noisy():
    clean = _clean()
    assert _beat_f(clean[:, 0]) == pytest.approx(1.0)
    downbeat_peaks, _ = find_peaks(clean[:, 1], height=0.5)
    np.testing.assert_allclose(downbeat_peaks / FPS, DOWNBEATS, atol=1 / FPS)
    noisy = simulate_activations(
        BEATS, DOWNBEATS, N_FRAMES, FPS, np.random.default_rng(0), miss_rate=0.3, offbeat_rate=0.3
    )
    assert noisy.shape == (N_FRAMES, 2) and noisy.dtype == np.float32
    assert 0.3 < _beat_f(noisy[:, 0]) < 0.9


def test_empty_and_silent_inputs_pass():
    augment = ActivationAugment(fps=FPS)
    empty, _ = augment(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), np.random.default_rng(0))
    assert empty.shape == (0, 2)
    for seed in range(10):  # every operation meets a track without peaks
        silent, _ = augment(np.zeros((300, 2), np.float32), np.zeros((300, 2), np.float32), np.random.default_rng(seed))
        assert silent.shape == (300, 2) and np.all((silent >= 0) & (silent <= 1))
