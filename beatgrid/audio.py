"""Audio input: decode any common format to mono float32 at a target sample rate.

Decoding goes through soundfile (libsndfile: wav, flac, ogg/vorbis/opus, aiff, mp3 with
libsndfile >= 1.1) and falls back to PyAV (the FFmpeg libraries that the ``av`` wheel
bundles, so no system ffmpeg is needed) for everything libsndfile cannot open: m4a/aac,
mp4, opus in webm, wma, alac. Resampling uses soxr at 'HQ' quality. Multi-channel audio is
mixed down to mono as the mean of its channels.

Every failure raises :class:`AudioError`, whose message names the file and the
problem, so a dataset index can record it and carry on with the other files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import InputFileError

__all__ = ["AUDIO_EXTENSIONS", "AudioError", "AudioInfo", "audio_info", "audio_duration", "is_audio_name",
           "load_audio", "check_audio_content"]

#: File extensions (lower case) searched for as audio: what libsndfile or PyAV decodes.
AUDIO_EXTENSIONS = (
    ".aac", ".aif", ".aifc", ".aiff", ".alac", ".caf", ".flac", ".m4a", ".m4b", ".mka", ".mp3",
    ".mp4", ".oga", ".ogg", ".opus", ".w64", ".wav", ".wave", ".webm", ".wma",
)  # fmt: skip


def is_audio_name(name: str | os.PathLike) -> bool:
    """Whether a file name has one of :data:`AUDIO_EXTENSIONS` (any case)."""
    return str(name).lower().endswith(AUDIO_EXTENSIONS)


class AudioError(InputFileError):
    """An audio file is missing, empty or cannot be decoded.

    ``path`` is the file, ``problem`` a short human-readable description
    (e.g. ``"audio file missing"``, ``"audio undecodable: Format not recognised"``).
    """


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, in its own (native) format."""

    duration_s: float  #: length in seconds
    sr: int  #: native sample rate in Hz
    channels: int  #: number of channels
    n_samples: int  #: samples per channel


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "audio file missing")
    if not path.is_file():
        raise AudioError(path, "audio path is not a file")
    if path.stat().st_size == 0:
        raise AudioError(path, "audio file is empty (0 bytes)")


def _sf_error(exc: Exception) -> str:
    """libsndfile's message without the repeated "Error opening '<path>': " prefix."""
    message = str(exc)
    if message.startswith("Error opening") and ": " in message:
        message = message.split("': ", 1)[-1]
    return message.strip().rstrip(".")


def _decode_av(path: Path, sf_message: str) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV; returns ``([n_samples, channels] float32, sr)``.

    Samples before the stream's start (the encoder delay of AAC/MP3 that the container
    marks with a negative timestamp) are dropped, so time 0 is the first real sample.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(path, "audio undecodable: the file has no audio stream")
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="fltp")
            chunks, sr, skip = [], 0, 0
            for frame in container.decode(stream):
                if not chunks and frame.pts is not None and frame.pts < 0 and frame.time_base:
                    skip = int(round(-frame.pts * frame.time_base * frame.sample_rate))
                for converted in to_float.resample(frame):
                    sr = converted.sample_rate
                    chunks.append(converted.to_ndarray())
            chunks += [c.to_ndarray() for c in to_float.resample(None)]
    except av.FFmpegError as exc:
        raise AudioError(path, f"audio undecodable: soundfile: {sf_message}; "
                               f"ffmpeg: {exc.strerror or type(exc).__name__}") from exc
    if not chunks or sr <= 0:
        raise AudioError(path, "audio has no samples (zero length)")
    samples = np.concatenate(chunks, axis=1).T[skip:]
    return np.ascontiguousarray(samples, dtype=np.float32), int(sr)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file at its native rate: ``([n_samples, channels] float32, sr)``."""
    _check_file(path)
    try:
        samples, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        samples, sr = _decode_av(path, _sf_error(exc))
    except (RuntimeError, OSError) as exc:
        raise AudioError(path, f"audio undecodable: {exc}") from exc
    if samples.shape[0] == 0:
        raise AudioError(path, "audio has no samples (zero length)")
    return samples, int(sr)


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Duration (s), native sample rate (Hz) and channel count of an audio file.

    Reads only the header when libsndfile can open the file; formats it cannot
    (m4a/aac, through PyAV) are decoded fully, which also proves they are decodable.

    Raises:
        AudioError: the file is missing, empty, undecodable or holds no samples.
    """
    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        samples, sr = _decode_av(path, _sf_error(exc))
        n_samples, channels = samples.shape
    except (RuntimeError, OSError) as exc:
        raise AudioError(path, f"audio undecodable: {exc}") from exc
    else:
        sr, n_samples, channels = int(info.samplerate), int(info.frames), int(info.channels)
    if sr <= 0:
        raise AudioError(path, f"audio header has an invalid sample rate ({sr} Hz)")
    if n_samples <= 0:
        raise AudioError(path, "audio has no samples (zero length)")
    return AudioInfo(duration_s=n_samples / sr, sr=sr, channels=channels, n_samples=n_samples)


def audio_duration(path: str | os.PathLike) -> float:
    """Length of an audio file in seconds (from the header where possible)."""
    return audio_info(path).duration_s


def load_audio(path: str | os.PathLike, sr: int) -> np.ndarray:
    """Decode ``path`` to a mono float32 signal at ``sr`` Hz.

    Channels are averaged; the signal is resampled with soxr ('HQ') when the
    file's rate differs from ``sr``. Samples are in [-1, 1] for integer PCM input.

    Raises:
        AudioError: missing, empty, undecodable, zero-length or non-finite audio.
        ValueError: ``sr`` is not a positive integer.
    """
    if int(sr) != sr or sr <= 0:
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")
    sr = int(sr)
    path = Path(path)
    samples, native_sr = _decode(path)
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(path, "audio contains non-finite samples (NaN or inf)")
    if native_sr != sr:
        mono = soxr.resample(mono, native_sr, sr, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


#: Peak amplitude below which a file counts as silent (-100 dBFS; one 16-bit step is -90 dBFS).
SILENCE_PEAK = 1e-5


def check_audio_content(path: str | os.PathLike, min_duration_s: float = 0.0) -> None:
    """Decode the whole file once, at its native rate, and check what the header cannot tell.

    Raises:
        AudioError: the file is undecodable, holds non-finite samples (NaN or inf), is
            silent (peak below :data:`SILENCE_PEAK`), or is shorter than
            ``min_duration_s`` seconds (e.g. one analysis frame).
    """
    path = Path(path)
    samples, sr = _decode(path)
    low, high = float(samples.min()), float(samples.max())  # NaN propagates into both
    if not (np.isfinite(low) and np.isfinite(high)):
        raise AudioError(path, "audio contains non-finite samples (NaN or inf)")
    peak = max(high, -low)
    if peak < SILENCE_PEAK:
        raise AudioError(path, "audio is silent (every sample is 0)" if peak == 0 else
                         f"audio is silent (peak {20 * np.log10(peak):.0f} dBFS)")
    if samples.shape[0] < min_duration_s * sr:
        raise AudioError(path, f"audio is too short: {samples.shape[0]} samples at {sr} Hz "
                               f"({1000 * samples.shape[0] / sr:.1f} ms), one frame needs {1000 * min_duration_s:.1f} ms")
