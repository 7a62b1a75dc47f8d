"""beatgrid.audio: decoding, mono mix-down, resampling and the errors for bad files."""

import os
import pickle

import numpy as np
import pytest
import soundfile as sf

from beatgrid.audio import AudioError, audio_duration, audio_info, check_audio_content, load_audio


def _sine(freq_hz: float, duration_s: float, sr: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(duration_s * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_stereo_44k1_is_mixed_to_the_channel_mean_and_resampled(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = _sine(440, 1.5, 44100, 0.6), _sine(440, 1.5, 44100, 0.2)
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="FLOAT")

    info = audio_info(path)
    assert (info.sr, info.channels, info.n_samples) == (44100, 2, 66150)
    assert info.duration_s == pytest.approx(1.5)

    mono = load_audio(path, sr=22050)
    assert mono.dtype == np.float32 and mono.ndim == 1
    assert len(mono) == 33075
    expected = _sine(440, 1.5, 22050, 0.4)  # mean of 0.6 and 0.2 amplitude
    inner = slice(500, -500)  # resampler edges
    np.testing.assert_allclose(mono[inner], expected[inner], atol=2e-3)


def test_16k_mono_is_upsampled_without_shifting_pitch_or_length(tmp_path):
    path = tmp_path / "speech_rate.flac"
    sf.write(path, _sine(1000, 2.0, 16000), 16000)
    assert audio_duration(path) == pytest.approx(2.0)

    mono = load_audio(path, sr=22050)
    assert len(mono) == 44100
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    peak_hz = np.argmax(spectrum) * 22050 / len(mono)
    assert peak_hz == pytest.approx(1000, abs=1.0)


def test_native_rate_is_returned_unchanged(tmp_path):
    path = tmp_path / "native.wav"
    signal = np.random.default_rng(0).uniform(-0.5, 0.5, 4000).astype(np.float32)
    sf.write(path, signal, 22050, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, 22050), signal)


def test_many_channels_are_averaged(tmp_path):
    path = tmp_path / "surround.wav"
    channels = np.stack([np.full(1000, v, np.float32) for v in (0.1, 0.2, 0.3, -0.6, 0.5, 0.3)], axis=1)
    sf.write(path, channels, 8000, subtype="FLOAT")
    assert audio_info(path).channels == 6
    np.testing.assert_allclose(load_audio(path, 8000), np.full(1000, 0.8 / 6), atol=1e-6)


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_compressed_formats_decode(tmp_path, fmt):
    if fmt.upper() not in sf.available_formats():
        pytest.skip(f"libsndfile here cannot write {fmt}")
    path = tmp_path / f"clip.{fmt}"
    sf.write(path, _sine(440, 1.0, 44100), 44100)
    assert audio_duration(path) == pytest.approx(1.0, abs=0.06)
    mono = load_audio(path, 22050)
    assert abs(len(mono) - 22050) < 0.06 * 22050
    assert 0.2 < np.max(np.abs(mono)) < 0.8


def _make_bad(tmp_path, kind: str):
    if kind == "missing":
        return tmp_path / "nothing_here.wav"
    if kind == "directory":
        (tmp_path / "folder.wav").mkdir()
        return tmp_path / "folder.wav"
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(1).bytes(4096))
    elif kind == "truncated_header":
        good = tmp_path / "good.wav"
        sf.write(good, _sine(440, 0.5, 22050), 22050)
        path.write_bytes(good.read_bytes()[:20])
    elif kind == "zero_length":
        sf.write(path, np.zeros((0, 1), np.float32), 22050)
    return path


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("missing", "missing"),
        ("directory", "not a file"),
        ("empty", "empty"),
        ("random_bytes", "undecodable"),
        ("truncated_header", "undecodable"),
        ("zero_length", "no samples"),
    ],
)
def test_bad_files_raise_audio_error_naming_file_and_problem(tmp_path, kind, problem):
    path = _make_bad(tmp_path, kind)
    for call in (lambda: audio_info(path), lambda: load_audio(path, 22050)):
        with pytest.raises(AudioError) as excinfo:
            call()
        assert str(path) in str(excinfo.value)
        assert problem in excinfo.value.problem
        assert excinfo.value.path == str(path)


def test_unknown_container_without_decoder_gives_a_hint(tmp_path):
    path = tmp_path / "track.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + os.urandom(512))
    with pytest.raises(AudioError, match="undecodable"):
        audio_info(path)


def test_non_finite_samples_are_rejected(tmp_path):
    path = tmp_path / "nan.wav"
    signal = np.zeros(1000, np.float32)
    signal[10] = np.nan
    sf.write(path, signal, 22050, subtype="FLOAT")
    with pytest.raises(AudioError, match="non-finite"):
        load_audio(path, 22050)


def test_content_check_finds_what_the_header_cannot(tmp_path):
    sr = 8000
    signal = np.random.default_rng(0).uniform(-0.5, 0.5, (sr, 2)).astype(np.float32)
    sf.write(tmp_path / "ok.wav", signal, sr, subtype="FLOAT")
    check_audio_content(tmp_path / "ok.wav", min_duration_s=0.5)
    with pytest.raises(AudioError, match="too short: 8000 samples at 8000 Hz"):
        check_audio_content(tmp_path / "ok.wav", min_duration_s=2.0)
    signal[sr // 2, 1] = np.nan  # in one channel only
    sf.write(tmp_path / "nan.wav", signal, sr, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio contains non-finite samples"):
        check_audio_content(tmp_path / "nan.wav")
    sf.write(tmp_path / "quiet.wav", np.full((sr, 1), 1e-7, np.float32), sr, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"quiet.wav: audio is silent \(peak -140 dBFS\)"):
        check_audio_content(tmp_path / "quiet.wav")


def test_invalid_target_rate(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, _sine(440, 0.2, 22050), 22050)
    for sr in (0, -22050, 22050.5):
        with pytest.raises(ValueError, match="sr"):
            load_audio(path, sr)


def test_audio_error_survives_pickling():
    """Errors cross process boundaries (Snakemake, DataLoader workers)."""
    error = pickle.loads(pickle.dumps(AudioError("a.wav", "audio file missing")))
    assert (error.path, error.problem, str(error)) == ("a.wav", "audio file missing", "a.wav: audio file missing")
    assert isinstance(error, ValueError)


def test_m4a_is_decoded_through_pyav_without_a_system_ffmpeg(tmp_path):
    """libsndfile cannot open AAC in MP4; the bundled FFmpeg of PyAV decodes it."""
    from tests.audio_files import write_m4a

    path = write_m4a(tmp_path / "stereo.m4a", np.stack([_sine(300, 2.0, 44100, 0.5),
                                                         _sine(300, 2.0, 44100, 0.1)], axis=1), 44100)
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(path))
    info = audio_info(path)
    assert (info.sr, info.channels) == (44100, 2)
    assert info.duration_s == pytest.approx(2.0, abs=0.05)  # AAC pads to whole 1024-sample frames
    mono = load_audio(path, 22050)
    expected = _sine(300, 2.0, 22050, 0.3)
    inner = slice(4000, 40000)
    lag = int(np.argmax(np.correlate(mono[inner], expected[inner][100:-100], "valid"))) - 100
    assert abs(lag) <= 1100 * 22050 // 44100  # at most the encoder delay of one AAC frame
    np.testing.assert_allclose(np.std(mono[inner]), np.std(expected[inner]), rtol=0.05)


def test_pyav_failure_names_both_decoders(tmp_path):
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(200))
    with pytest.raises(AudioError, match="undecodable: soundfile: .*; ffmpeg: ") as excinfo:
        load_audio(broken, 22050)
    assert excinfo.value.path == str(broken)
