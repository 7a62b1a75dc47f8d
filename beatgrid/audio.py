"""Audio input: decode any common format to mono float32 at a target sample rate.

Decoding goes through soundfile (libsndfile: wav, flac, ogg/opus, aiff, mp3 with
libsndfile >= 1.1) and falls back to audioread (ffmpeg / GStreamer / Core Audio,
whichever is installed) for containers libsndfile cannot open (m4a, aac, mp4, wma).
Resampling uses soxr at 'HQ' quality. Multi-channel audio is mixed down to mono as
the mean of its channels.

Every failure raises :class:`AudioError`, whose message names the file and the
problem, so a dataset index can record it and carry on with the other files.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import InputFileError

__all__ = ["AudioError", "AudioInfo", "audio_info", "audio_duration", "load_audio"]

# Extensions tried with audioread when libsndfile cannot open a file; listed only
# to give a useful hint in the error message when no decoder is installed.
_FALLBACK_HINT_EXTENSIONS = {".m4a", ".aac", ".mp4", ".m4b", ".wma", ".alac", ".opus", ".webm"}


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


def _audioread_backends() -> list:
    """audioread's decoders other than its stdlib wave/aiff reader (which reads
    nothing libsndfile cannot); empty when audioread or a decoder is missing."""
    try:
        with warnings.catch_warnings():  # audioread imports aifc/audioop/sunau
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioread
            import audioread.rawread

            backends = audioread.available_backends()
    except ImportError:  # pragma: no cover - audioread comes with librosa
        return []
    return [b for b in backends if b is not audioread.rawread.RawAudioFile]


def _decode_audioread(path: Path, sf_message: str) -> tuple[np.ndarray, int]:
    """Decode with audioread; returns ``([n_samples, channels] float32, sr)``."""
    backends = _audioread_backends()
    if not backends:
        raise AudioError(path, f"audio undecodable: {sf_message}{_decoder_hint(path)}")
    import audioread

    try:
        with audioread.audio_open(str(path), backends=backends) as decoder:
            sr, channels = int(decoder.samplerate), int(decoder.channels)
            chunks = [np.frombuffer(buf, dtype="<i2") for buf in decoder]
    except (audioread.DecodeError, audioread.NoBackendError, EOFError, OSError, ValueError) as exc:
        detail = str(exc) or type(exc).__name__
        raise AudioError(
            path, f"audio undecodable: soundfile: {sf_message}; audioread: {detail}"
        ) from exc
    if sr <= 0 or channels <= 0:
        raise AudioError(path, f"audio undecodable: decoder reported sr={sr}, channels={channels}")
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype="<i2")
    pcm = pcm[: len(pcm) - len(pcm) % channels]
    samples = pcm.reshape(-1, channels).astype(np.float32) / np.float32(32768.0)
    return samples, sr


def _decoder_hint(path: Path) -> str:
    if path.suffix.lower() in _FALLBACK_HINT_EXTENSIONS:
        return f" (no installed decoder reads {path.suffix}; install ffmpeg for audioread)"
    return ""


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file at its native rate: ``([n_samples, channels] float32, sr)``."""
    _check_file(path)
    try:
        samples, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        samples, sr = _decode_audioread(path, _sf_error(exc))
    except (RuntimeError, OSError) as exc:
        raise AudioError(path, f"audio undecodable: {exc}") from exc
    if samples.shape[0] == 0:
        raise AudioError(path, "audio has no samples (zero length)")
    return samples, int(sr)


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Duration (s), native sample rate (Hz) and channel count of an audio file.

    Reads only the header when libsndfile can open the file; formats it cannot
    (m4a/aac) are decoded fully, which also proves they are decodable.

    Raises:
        AudioError: the file is missing, empty, undecodable or holds no samples.
    """
    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        samples, sr = _decode_audioread(path, _sf_error(exc))
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
