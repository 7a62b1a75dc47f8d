"""Mel-domain augmentation: shapes and labels stay consistent, each transform does its job."""

import numpy as np
import pytest

from beatgrid.data.augment import MelAugment, stretch_time
from beatgrid.targets import render_targets, target_event_frames
from beatgrid.data.dataset import FrameDataset

N_FRAMES, N_MELS = 400, 32
OFF = {name: 0.0 for name in MelAugment.__dataclass_fields__ if name.startswith("p_")}


def _crop(seed=0):
    rng = np.random.default_rng(seed)
    mel = rng.gamma(2.0, 0.5, size=(N_FRAMES, N_MELS)).astype(np.float32)
    beats = np.arange(7, N_FRAMES, 23)
    downbeats = beats[::4]
    targets = np.stack([render_targets(beats, N_FRAMES), render_targets(downbeats, N_FRAMES)], 1)
    return mel, targets, beats, downbeats


def _only(**settings) -> MelAugment:
    return MelAugment(**{**OFF, **settings})


def test_nothing_enabled_is_the_identity():
    mel, targets, _, _ = _crop()
    out_mel, out_targets = _only()(mel, targets, np.random.default_rng(0))
    np.testing.assert_array_equal(out_mel, mel)
    np.testing.assert_array_equal(out_targets, targets)


@pytest.mark.parametrize("rate", [0.8, 0.93, 1.0, 1.1, 1.25])
def test_tempo_change_moves_labels_with_the_music(rate):
    mel, targets, beats, downbeats = _crop()
    # put a loud onset on every beat so the stretched mel can be checked against the labels
    mel[beats] += 10.0
    out_mel, out_targets = _only().change_tempo(mel, targets, rate)
    n_out = int(round(N_FRAMES / rate))
    assert out_mel.shape == (n_out, N_MELS) and out_targets.shape == (n_out, 2)
    new_beats = target_event_frames(out_targets[:, 0])
    expected = np.round(beats / rate).astype(int)
    np.testing.assert_array_equal(new_beats, expected[expected < n_out])
    assert len(new_beats) >= len(beats) - 1  # count kept up to the crop edge
    new_downbeats = target_event_frames(out_targets[:, 1])
    expected_down = np.round(downbeats / rate).astype(int)
    np.testing.assert_array_equal(new_downbeats, expected_down[expected_down < n_out])
    # widening as in the original: 0.5 next to each beat
    inner = new_beats[(new_beats > 0) & (new_beats < n_out - 1)]
    assert np.all(out_targets[inner - 1, 0] >= 0.5) and np.all(out_targets[inner + 1, 0] >= 0.5)
    # the onsets moved with the labels (within a frame of interpolation)
    loudest = np.array([np.argmax(out_mel[max(0, b - 3):b + 4].mean(1)) + max(0, b - 3)
                        for b in new_beats])
    assert np.all(np.abs(loudest - new_beats) <= 1)


def test_stretch_time_interpolates_linearly():
    ramp = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_allclose(stretch_time(ramp, 0.5)[:, 0], np.minimum(np.arange(20) * 0.5, 9))
    np.testing.assert_allclose(stretch_time(ramp, 2.0)[:, 0], [0, 2, 4, 6, 8])


def test_pitch_shift_moves_bands_and_keeps_labels():
    mel, targets, _, _ = _crop()
    seen = set()
    for seed in range(12):
        out_mel, out_targets = _only(p_pitch=1.0, pitch_bands=3)(mel, targets,
                                                                 np.random.default_rng(seed))
        np.testing.assert_array_equal(out_targets, targets)
        # out band b holds in band b - shift; the vacated edge repeats the edge band
        shifts = [s for s in range(-3, 4) if np.array_equal(
            out_mel[:, max(s, 0):N_MELS + min(s, 0)], mel[:, max(-s, 0):N_MELS - max(s, 0)])]
        assert len(shifts) == 1
        shift = shifts[0]
        if shift > 0:
            np.testing.assert_array_equal(out_mel[:, :shift], np.repeat(mel[:, :1], shift, 1))
        seen.add(shift)
    assert len(seen - {0}) >= 3 and max(seen) <= 3 and min(seen) >= -3


def test_gain_is_exact_on_the_magnitude():
    mel, targets, _, _ = _crop()
    out_mel, out_targets = _only(p_gain=1.0, gain_db=(6.0, 6.0))(mel, targets,
                                                                  np.random.default_rng(0))
    np.testing.assert_allclose(np.expm1(out_mel), np.expm1(mel) * 10 ** (6 / 20), rtol=1e-4)
    np.testing.assert_array_equal(out_targets, targets)


def test_tilt_raises_one_end_and_lowers_the_other():
    mel, targets, _, _ = _crop()
    aug = _only(p_tilt=1.0, tilt_db=12.0)
    out_mel, _ = aug(mel, targets, np.random.default_rng(1))
    change = (out_mel - mel).mean(axis=0)
    assert np.sign(change[0]) == -np.sign(change[-1]) != 0


def test_noise_and_masks_keep_shapes_and_labels():
    mel, targets, _, _ = _crop()
    aug = _only(p_noise=1.0, p_freq_mask=1.0, p_time_mask=1.0, p_eq=1.0)
    out_mel, out_targets = aug(mel, targets, np.random.default_rng(2))
    assert out_mel.shape == mel.shape and out_mel.dtype == np.float32
    np.testing.assert_array_equal(out_targets, targets)
    assert np.any(np.all(out_mel == 0.0, axis=0))  # a masked band
    assert np.any(np.all(out_mel == 0.0, axis=1))  # a masked frame
    assert np.isfinite(out_mel).all() and (out_mel >= 0).all()


def test_same_generator_same_result_and_input_untouched():
    mel, targets, _, _ = _crop()
    mel_copy = mel.copy()
    aug = MelAugment()
    a = aug(mel, targets, np.random.default_rng(5))
    b = aug(mel, targets, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(mel, mel_copy)


def test_defaults_keep_labels_consistent_over_many_crops():
    """With every transform on, the labels are the crop's events moved by the tempo rate."""
    mel, targets, beats, _ = _crop()
    aug = MelAugment(p_tempo=1.0)
    for seed in range(20):
        out_mel, out_targets = aug(mel, targets, np.random.default_rng(seed))
        assert out_mel.shape[0] == out_targets.shape[0]
        rate = N_FRAMES / out_mel.shape[0]
        events = target_event_frames(out_targets[:, 0])
        assert abs(len(events) - len(beats)) <= 1
        np.testing.assert_allclose(events, beats[:len(events)] / rate, atol=1.0)


def test_works_as_a_dataset_augment():
    mel, targets, _, _ = _crop()
    data = FrameDataset({"a": mel}, {"a": targets}, ["a"], crop_frames=200, augment=MelAugment())
    x, y, _ = data[0]
    assert x.shape[0] == y.shape[0] and x.shape[1] == N_MELS


def test_background_mixing_adds_the_other_track_on_the_magnitude_and_keeps_the_labels():
    mel, targets, _, _ = _crop(0)
    background = _crop(1)[0][:150]  # shorter than the crop: repeated
    augment = _only(p_mix=1.0, mix_gain_db=(-6.0, -6.0))
    assert augment.needs_background and not _only().needs_background
    out_mel, out_targets = augment(mel, targets, np.random.default_rng(0), background=background)
    repeated = np.resize(background, mel.shape)
    expected = np.log1p(np.expm1(mel) + 10 ** (-6 / 20) * np.expm1(repeated))
    np.testing.assert_allclose(out_mel, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out_targets, targets)
    long_background = _crop(2)[0]  # as long as the crop: used whole
    out_mel, _ = augment(mel, targets, np.random.default_rng(0), background=long_background)
    np.testing.assert_allclose(out_mel, np.log1p(np.expm1(mel) + 10 ** (-6 / 20) * np.expm1(long_background)),
                               rtol=1e-5, atol=1e-5)


def test_background_mixing_off_leaves_every_other_draw_as_it_was():
    mel, targets, _, _ = _crop()
    plain = MelAugment()(mel, targets, np.random.default_rng(5))
    ignored = MelAugment()(mel, targets, np.random.default_rng(5), background=_crop(1)[0])
    np.testing.assert_array_equal(plain[0], ignored[0])  # p_mix 0: the same random stream


def test_the_dataset_mixes_in_another_track():
    silent = np.zeros((300, N_MELS), np.float32)
    loud = np.full((300, N_MELS), 3.0, np.float32)
    no_targets = np.zeros((300, 2), np.float32)
    data = FrameDataset({"silent": silent, "loud": loud}, {"silent": no_targets, "loud": no_targets},
                        ["silent", "loud"], crop_frames=100, augment=_only(p_mix=1.0, mix_gain_db=(0.0, 0.0)))
    x, _, track_id = data[0]
    assert track_id == "silent" and np.allclose(x.numpy(), 3.0)  # the loud track, never itself
    x, _, track_id = data[1]
    assert track_id == "loud" and np.allclose(x.numpy(), np.log1p(np.expm1(3.0)))  # plus silence


def test_the_config_schema_lists_every_setting_a_config_may_give():
    """crnn.augment's mapping is checked by the schema: it must offer exactly MelAugment's
    settings (the label widening comes from the targets: block, not from here)."""
    from pathlib import Path

    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.schema.yaml").read_text())
    mapping = next(option for option in schema["$defs"]["mel_augment"]["oneOf"] if option.get("type") == "object")
    assert set(mapping["properties"]) == set(MelAugment.__dataclass_fields__) - {"widen_frames", "widen_value"}


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="p_gain"):
        MelAugment(p_gain=1.5)
    with pytest.raises(ValueError, match="tempo_rate"):
        MelAugment(tempo_rate=(1.2, 0.8))
    with pytest.raises(ValueError, match="mix_gain_db"):
        MelAugment(mix_gain_db=(-6.0, -20.0))
    with pytest.raises(ValueError, match="p_mix"):
        MelAugment(p_mix=2.0)
    with pytest.raises(ValueError, match="unknown"):
        MelAugment.from_dict({"gain": 3})
    assert MelAugment.from_dict({"tempo_rate": [0.9, 1.1]}).tempo_rate == (0.9, 1.1)
    with pytest.raises(ValueError, match="equal T"):
        MelAugment()(np.zeros((10, 4)), np.zeros((9, 2)), np.random.default_rng(0))
