"""Audio files for tests in the formats users bring: m4a/AAC written with PyAV's encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_m4a(path: str | Path, signal: np.ndarray, sr: int) -> Path:
    """Encode mono or ``[n, channels]`` float audio in [-1, 1] as AAC in an MP4 (.m4a) container."""
    import av

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    samples = np.asarray(signal, dtype=np.float32)
    planar = np.ascontiguousarray(samples.T if samples.ndim == 2 else samples[None])
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=sr, layout=layout)
        for start in range(0, planar.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start:start + 1024]),
                                               format="fltp", layout=layout)
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)
