"""Online (streaming) beat and downbeat tracking over frame-wise activations.

:class:`OnlineBeatTracker` takes CRNN activations one frame at a time, runs the
causal Learned Temporal Model (LTM) one step per frame and decides online whether a
beat happened, with its position in the bar. The decision rule
(:class:`CausalPeakPicker`) is causal peak picking:

- frame ``f`` is a beat when its beat probability ``a[f] >= threshold``,
  ``a[f] >= a[f-1]`` and ``a[f] > a[f+1]`` (the activation has started to fall), and at
  least ``refractory_s`` seconds have passed since the previous beat. The decision is
  taken when frame ``f+1`` arrives: the **decision delay is one frame**
  (1 / fps = 20 ms at 50 fps) plus the processing time of one frame;
- the beat is a downbeat when the downbeat probability around it
  (``max(d[f-1], d[f], d[f+1])``) reaches ``downbeat_threshold``; otherwise the bar
  position counts on from the previous beat and wraps to 1 after ``beats_per_bar``
  beats (a downbeat by counting). Until the first downbeat is seen the position is 0
  (unknown). When ``beats_per_bar`` is None it is the most frequent bar length among
  the last 8 bars delimited by detected downbeats (4 until one is seen).

The other decision rule, :class:`CausalDBN`, adds a tempo and bar model: forward
filtering of the bar-pointer HMM of :mod:`beatgrid.decoding.dbn` (the model the offline
Viterbi decoder uses; as madmom's online ``DBNBeatTrackingProcessor``, which reports the
most probable state instead). A beat is under way while the filtered probability of the
beat states (the first ``1 / observation_lambda`` of every beat) is at least 0.5; the beat
is the frame of highest beat probability while it is under way, at least one shortest
modelled beat interval (``round(60 * fps / bpm_max)`` frames) after the previous beat, and
its bar position is the beat in the bar holding most of that probability. It is decided
when the probability falls after the peak or the beat states lose their majority: the
**decision delay is one frame** (20 ms at 50 fps; longer only on a flat-topped peak).

:func:`causal_peak_picking` and :func:`causal_dbn` apply the rules to a whole array of
probabilities (the output of the LTM's whole-sequence causal pass) and
:func:`track_online` runs the LTM's whole-sequence pass and then a rule: they give
exactly the beats a stream would give, much faster than stepping frame by frame.

From audio, :class:`OnlineCRNNTracker` chains :class:`OnlineLogMel` (log-mel frames
from audio blocks, equal to :func:`beatgrid.features.log_mel`), a causal CRNN stepped
per block and :class:`OnlineBeatTracker`. Mel frames are centred on their time
(``center=True`` as in training), so frame ``t`` (at ``t * hop_length`` samples) can
be computed only once ``n_fft // 2`` samples after its centre have arrived: a
look-ahead of ``n_fft / 2 / sr`` seconds (512 samples = 23 ms at the default 22050 Hz),
on top of the one-frame decision delay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..features import MelConfig, mel_filterbank
from .dbn import DBNSettings, ForwardFilter
from .peaks import activation_pair, calibrate

__all__ = [
    "BeatEvent",
    "CausalPeakPicker",
    "CausalDBN",
    "DECISION_RULES",
    "OnlineBeatTracker",
    "causal_peak_picking",
    "causal_dbn",
    "track_online",
    "ltm_probabilities",
    "default_refractory_s",
    "OnlineLogMel",
    "OnlineCRNNTracker",
]

#: Fraction of the shortest beat period (at ``bpm_max``) used as the default refractory period.
REFRACTORY_FRACTION = 0.7
#: Bars remembered to infer the number of beats per bar.
BAR_HISTORY = 8


@dataclass(frozen=True)
class BeatEvent:
    """One beat decided online.

    ``time_s`` and ``frame`` locate the beat (the activation peak), which was decided one
    frame later; ``bar_position`` is 1 on downbeats, 2, 3, ... after, 0 while unknown;
    ``strength`` is the beat probability at the peak.
    """

    time_s: float
    frame: int
    is_downbeat: bool
    bar_position: int
    strength: float


def default_refractory_s(bpm_max: float) -> float:
    """Default minimum time between beats: 0.7 of the beat period at ``bpm_max`` (seconds).

    The margin lets beats at ``bpm_max`` through even when played 30 % early.
    """
    if bpm_max <= 0:
        raise ValueError(f"bpm_max must be > 0, got {bpm_max}")
    return REFRACTORY_FRACTION * 60.0 / bpm_max


class CausalPeakPicker:
    """Causal beat/downbeat decisions over beat/downbeat probabilities, frame by frame.

    Args:
        fps: frame rate of the probabilities (frames per second).
        threshold: minimum beat probability of a beat.
        refractory_s: minimum time between beats in seconds; default
            :func:`default_refractory_s` of ``bpm_max``.
        beats_per_bar: beats per bar for counting; None infers it from detected downbeats.
        bpm_max: fastest expected tempo (sets the default ``refractory_s``).
        downbeat_threshold: minimum downbeat probability of a downbeat; default ``threshold``.
    """

    def __init__(
        self,
        fps: float,
        threshold: float = 0.5,
        refractory_s: float | None = None,
        beats_per_bar: int | None = None,
        *,
        bpm_max: float = 200.0,
        downbeat_threshold: float | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if beats_per_bar is not None and beats_per_bar < 1:
            raise ValueError(f"beats_per_bar must be >= 1, got {beats_per_bar}")
        self.fps = float(fps)
        self.threshold = float(threshold)
        self.refractory_s = default_refractory_s(bpm_max) if refractory_s is None else float(refractory_s)
        self.beats_per_bar = beats_per_bar
        self.downbeat_threshold = self.threshold if downbeat_threshold is None else float(downbeat_threshold)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is frame 0."""
        self.frame = 0  # index of the next frame
        # Beat and downbeat probabilities at frames f-1 and f, f = the candidate peak
        # (zeros before the stream starts).
        self._prev_beat = self._cand_beat = 0.0
        self._prev_downbeat = self._cand_downbeat = 0.0
        self._last_beat_frame: int | None = None
        self._position = 0  # bar position of the last beat, 0 = unknown
        self._beats_since_downbeat: int | None = None  # counted from the last *detected* downbeat
        self._bar_lengths: deque[int] = deque(maxlen=BAR_HISTORY)

    @property
    def current_beats_per_bar(self) -> int:
        """Beats per bar used for counting now (given, or inferred from recent bars)."""
        if self.beats_per_bar is not None:
            return self.beats_per_bar
        if not self._bar_lengths:
            return 4
        return int(np.bincount(np.asarray(self._bar_lengths)).argmax())

    def process_frame(self, probabilities: np.ndarray) -> BeatEvent | None:
        """Take the next frame's ``[beat, downbeat]`` probabilities; return the beat it confirms.

        A returned event lies one frame in the past (the frame before this one).
        """
        beat, downbeat = float(probabilities[0]), float(probabilities[1])
        cand_beat, candidate = self._cand_beat, self.frame - 1
        event = None
        if (
            candidate >= 0
            and cand_beat >= self.threshold
            and cand_beat >= self._prev_beat
            and cand_beat > beat
            and (
                self._last_beat_frame is None
                or (candidate - self._last_beat_frame) / self.fps >= self.refractory_s
            )
        ):
            downbeat_around = max(self._prev_downbeat, self._cand_downbeat, downbeat)
            event = self._decide(candidate, cand_beat, downbeat_around)
        self._prev_beat, self._cand_beat = cand_beat, beat
        self._prev_downbeat, self._cand_downbeat = self._cand_downbeat, downbeat
        self.frame += 1
        return event

    def _decide(self, frame: int, strength: float, downbeat: float) -> BeatEvent:
        self._last_beat_frame = frame
        if self._beats_since_downbeat is not None:
            self._beats_since_downbeat += 1
        if downbeat >= self.downbeat_threshold:
            if self._beats_since_downbeat is not None and self._beats_since_downbeat > 1:
                self._bar_lengths.append(self._beats_since_downbeat)
            self._beats_since_downbeat = 0
            position = 1
        elif self._position == 0:
            position = 0
        else:  # count on; wrap after a full bar
            position = 1 if self._position >= self.current_beats_per_bar else self._position + 1
        self._position = position
        return BeatEvent(
            time_s=frame / self.fps,
            frame=frame,
            is_downbeat=position == 1,
            bar_position=position,
            strength=strength,
        )


class CausalDBN:
    """Causal beat/downbeat decisions by forward filtering of the bar-pointer HMM, frame by frame.

    A beat is under way while the filter (:class:`beatgrid.decoding.dbn.ForwardFilter`)
    gives the beat states probability >= 0.5 after the current frame. The beat is placed on
    the highest beat probability while it is under way and decided as soon as the
    probability falls (or the beat is no longer under way): one frame after the peak, as
    the peak picker. Beats keep the shortest modelled beat interval apart
    (``round(60 * fps / bpm_max)`` frames). The bar position is the beat in the bar that
    holds most of the beat-state probability when the beat begins.

    Args:
        fps: frame rate of the probabilities (frames per second).
        bpm_min, bpm_max: tempo range in BPM.
        beats_per_bar: meters modelled; the filter weighs which one plays.
        transition_lambda, observation_lambda: as in :func:`beatgrid.decoding.dbn.track_dbn`.
        threshold: the filter starts at the first frame whose beat or downbeat probability
            reaches this value (no beats in a silent intro), as the offline DBN trims.
        downbeats: whether the second column (downbeat probability) is used; without it
            bar positions are 0 (unknown).

    ``process_frame`` takes the next frame's calibrated ``[beat, downbeat]`` probabilities
    (:func:`beatgrid.decoding.peaks.calibrate`) and returns the beat it decides, or None.
    """

    #: probability of the beat states above which a beat is under way
    BEAT_PROBABILITY = 0.5

    def __init__(
        self,
        fps: float,
        bpm_min: float = DBNSettings.bpm_min,
        bpm_max: float = DBNSettings.bpm_max,
        beats_per_bar: Sequence[int] | int = DBNSettings.beats_per_bar,
        *,
        transition_lambda: float = DBNSettings.transition_lambda,
        observation_lambda: float = DBNSettings.observation_lambda,
        threshold: float = 0.05,
        downbeats: bool = True,
    ) -> None:
        settings = DBNSettings(bpm_min, bpm_max, beats_per_bar, transition_lambda, observation_lambda)
        self.filter = ForwardFilter(fps, settings, downbeats=downbeats)
        self.fps = self.filter.fps
        self.threshold = float(threshold)
        #: minimum distance between beats in frames: the shortest modelled beat interval
        self.min_interval = int(self.filter.hmm.intervals[0])
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is frame 0."""
        self.filter.reset()
        self.frame = 0  # index of the next frame
        self._started = False  # a frame reached the threshold
        self._last_beat_frame: int | None = None
        self._candidate: BeatEvent | None = None  # the beat under way, not yet decided

    def _advance(self, frame: int, beat_probability: float, row: int, strength: float) -> BeatEvent | None:
        """The decision at ``frame`` from the filter's output and the frame's beat probability."""
        under_way = beat_probability >= self.BEAT_PROBABILITY
        event, candidate = None, self._candidate
        if candidate is not None:
            if not under_way or strength < candidate.strength:
                event, self._candidate = candidate, None
                self._last_beat_frame = candidate.frame
            elif strength > candidate.strength:
                self._candidate = BeatEvent(frame / self.fps, frame, candidate.is_downbeat,
                                            candidate.bar_position, strength)
        elif under_way and (self._last_beat_frame is None or frame - self._last_beat_frame >= self.min_interval):
            bar_position = int(self.filter.row_beat[row]) + 1 if self.filter.downbeats else 0
            self._candidate = BeatEvent(frame / self.fps, frame, bar_position == 1, bar_position, strength)
        return event

    def _loud(self, probabilities: np.ndarray) -> np.ndarray:
        """Per frame, whether the beat (or downbeat) probability reaches ``threshold``."""
        column = probabilities.max(axis=-1) if self.filter.downbeats else probabilities[..., 0]
        return column >= self.threshold

    def process_frame(self, probabilities: np.ndarray) -> BeatEvent | None:
        """Take the next frame's ``[beat, downbeat]`` probabilities; return the beat it decides, if any."""
        frame_probabilities = np.asarray(probabilities, dtype=np.float64)
        frame = self.frame
        self.frame += 1
        self._started = self._started or bool(self._loud(frame_probabilities))
        if not self._started:
            return None
        beat, downbeat = float(frame_probabilities[0]), float(frame_probabilities[1])
        beat_probability, row = self.filter.step(beat, downbeat if self.filter.downbeats else None)
        return self._advance(frame, beat_probability, row, beat)

    def process(self, probabilities: np.ndarray) -> list[BeatEvent]:
        """Feed ``[T, 2]`` probabilities (continuing the stream), filtered in one compiled loop.

        Returns exactly the beats :meth:`process_frame` gives frame by frame.
        """
        probabilities = activation_pair(probabilities, np.float64)
        first = self.frame
        self.frame += len(probabilities)
        if not self._started:
            loud = np.flatnonzero(self._loud(probabilities))
            if len(loud) == 0:
                return []
            self._started = True
            probabilities = probabilities[loud[0]:]
            first += int(loud[0])
        beat_probability, rows = self.filter.process(
            probabilities[:, 0], probabilities[:, 1] if self.filter.downbeats else None)
        events = (self._advance(first + t, beat_probability[t], rows[t], probabilities[t, 0])
                  for t in range(len(probabilities)))
        return [event for event in events if event is not None]


#: The causal decision rules by name: ``peaks`` (:class:`CausalPeakPicker`, one frame late, no
#: tempo model) and ``dbn`` (:class:`CausalDBN`, forward filtering of tempo, beat and bar).
DECISION_RULES: dict[str, type] = {"peaks": CausalPeakPicker, "dbn": CausalDBN}


class OnlineBeatTracker:
    """Streaming beat tracker: the causal LTM stepped per frame, then a causal decision rule.

    Args:
        model: a causal LTM with ``init_state``/``step`` (``TemporalConvNet``,
            ``GRUTemporalModel``), or None to decide on the input activations directly.
        fps: frame rate of the activations (frames per second).
        rule: the decision rule (:data:`DECISION_RULES`): ``peaks`` (:class:`CausalPeakPicker`,
            decides one frame late) or ``dbn`` (:class:`CausalDBN`, also one frame late, with a tempo and bar model).
        pos_weight: the positive weight the LTM (or, without one, the CRNN) was trained
            with; the ``dbn`` rule reads probabilities calibrated with it
            (:func:`beatgrid.decoding.peaks.calibrate`), as the offline DBN does.
        rule_options: the options of the rule's class (``threshold``, ``refractory_s``,
            ``beats_per_bar``, ``bpm_max``, ``downbeat_threshold`` of :class:`CausalPeakPicker`;
            ``bpm_min``, ``bpm_max``, ``beats_per_bar``, ... of :class:`CausalDBN`).

    ``process_frame`` takes one frame of CRNN activations (``[beat, downbeat]``
    probabilities) and returns a :class:`BeatEvent` when it decides a beat, else None.
    The model is put in ``eval()`` mode.
    """

    def __init__(self, model: nn.Module | None, fps: float, *, rule: str = "peaks",
                 pos_weight: Sequence[float] | float | None = None, **rule_options: Any) -> None:
        if rule not in DECISION_RULES:
            raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(DECISION_RULES)}")
        self.model = model.eval() if model is not None else None
        self.picker = DECISION_RULES[rule](fps, **rule_options)
        self.pos_weight = pos_weight if rule == "dbn" else None
        self.fps = self.picker.fps
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.picker.reset()
        self._state = self.model.init_state(1) if self.model is not None else None

    @torch.inference_mode()
    def probabilities(self, activation_frame: np.ndarray) -> np.ndarray:
        """Advance the LTM by one frame: CRNN ``[beat, downbeat]`` -> LTM probabilities ``[2]``."""
        frame = np.asarray(activation_frame, dtype=np.float32)
        if frame.shape != (2,):
            raise ValueError(f"an activation frame must have shape (2,), got {frame.shape}")
        if self.model is None:
            return frame
        logits, self._state = self.model.step(torch.from_numpy(frame)[None], self._state)
        return torch.sigmoid(logits[0]).numpy()

    def process_frame(self, activation_frame: np.ndarray) -> BeatEvent | None:
        """Take the next frame of CRNN activations; return the beat it decides, if any."""
        probabilities = self.probabilities(activation_frame)
        if self.pos_weight is not None:
            probabilities = calibrate(probabilities[None], self.pos_weight)[0]
        return self.picker.process_frame(probabilities)

    def process(self, activations: np.ndarray) -> list[BeatEvent]:
        """Feed ``[T, 2]`` activations frame by frame (continuing the stream); return the beats."""
        events = (self.process_frame(frame) for frame in np.asarray(activations, dtype=np.float32))
        return [event for event in events if event is not None]


def _events_to_arrays(events: list[BeatEvent]) -> tuple[np.ndarray, np.ndarray]:
    times = np.array([e.time_s for e in events], dtype=float)
    positions = np.array([e.bar_position for e in events], dtype=int)
    return times, positions


def causal_peak_picking(activations: np.ndarray, fps: float, **picker_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """The streaming decision rule over a whole ``[T, 2]`` array of beat/downbeat probabilities.

    ``picker_options``: ``threshold``, ``refractory_s``, ``beats_per_bar``, ``bpm_max``,
    ``downbeat_threshold`` of :class:`CausalPeakPicker`. Returns ``(beat_times, positions)``:
    seconds, and bar positions (1 = downbeat, 0 = unknown) exactly as the picker emits
    them frame by frame.
    """
    activations = activation_pair(activations, np.float64)
    picker = CausalPeakPicker(fps, **picker_options)
    events = [picker.process_frame(frame) for frame in activations]
    return _events_to_arrays([event for event in events if event is not None])


def causal_dbn(activations: np.ndarray, fps: float, **rule_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """The forward-filtering decision rule over a whole ``[T, 2]`` array of calibrated probabilities.

    ``rule_options``: the options of :class:`CausalDBN`. Returns ``(beat_times, positions)``:
    seconds, and bar positions (1 = downbeat), exactly as :class:`CausalDBN` emits them
    frame by frame.
    """
    return _events_to_arrays(CausalDBN(fps, **rule_options).process(activations))


@torch.inference_mode()
def ltm_probabilities(model: nn.Module, activations: np.ndarray) -> np.ndarray:
    """The LTM's whole-sequence causal pass: CRNN ``[T, 2]`` -> LTM probabilities ``[T, 2]``."""
    activations = activation_pair(activations)
    model.eval()
    device = next(model.parameters()).device
    logits = model(torch.from_numpy(activations)[None].to(device))[0]
    return torch.sigmoid(logits).cpu().numpy()


def track_online(model: nn.Module | None, activations: np.ndarray, fps: float, *, rule: str = "peaks",
                 pos_weight: Sequence[float] | float | None = None,
                 **rule_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """What :class:`OnlineBeatTracker` emits for CRNN ``activations [T, 2]``, computed offline.

    Runs the LTM's whole-sequence causal pass (equal to stepping it frame by frame) and
    then the decision ``rule`` (``peaks``: :func:`causal_peak_picking`; ``dbn``: the
    probabilities calibrated with ``pos_weight``, then :func:`causal_dbn`) with
    ``rule_options``. Returns ``(beat_times, positions)`` in seconds and bar positions
    (1 = downbeat, 0 = unknown).
    """
    if rule not in DECISION_RULES:
        raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(DECISION_RULES)}")
    probabilities = activations if model is None else ltm_probabilities(model, activations)
    if rule == "dbn":
        return causal_dbn(calibrate(activation_pair(probabilities), pos_weight), fps, **rule_options)
    return causal_peak_picking(probabilities, fps, **rule_options)


class OnlineLogMel:
    """Log-mel frames from a stream of audio blocks, equal to :func:`beatgrid.features.log_mel`.

    ``push(block)`` takes the next mono float samples at ``cfg.sr`` and returns the mel
    frames ``[t, n_mels]`` completed by them (``t >= 0``); frame ``i`` is complete once
    sample ``i * hop_length + n_fft // 2 - 1`` has arrived (its centre plus the
    ``n_fft // 2`` look-ahead; frame 0 also needs sample ``n_fft // 2`` for the
    reflection padding at the start). ``flush()`` ends the stream and returns the last
    frames, whose windows reach past the end and are reflection-padded as offline.
    """

    def __init__(self, cfg: MelConfig = MelConfig()) -> None:
        self.cfg = cfg
        self._half = cfg.n_fft // 2
        self._window = torch.hann_window(cfg.n_fft, periodic=True, dtype=torch.float32)
        self._filterbank = torch.from_numpy(np.ascontiguousarray(mel_filterbank(cfg).T))
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.n_samples = 0  # samples received
        self.n_frames = 0  # frames returned
        self._buffer = np.zeros(0, dtype=np.float32)  # padded signal from sample _offset on
        self._offset = 0  # index in the padded signal of _buffer[0]
        self._started = False  # the start's reflection padding is in place

    def _mel(self, padded: np.ndarray) -> np.ndarray:
        """Mel frames of every full window of ``padded`` (hop ``hop_length``)."""
        with torch.inference_mode():
            spec = torch.stft(
                torch.from_numpy(padded), n_fft=self.cfg.n_fft, hop_length=self.cfg.hop_length,
                win_length=self.cfg.n_fft, window=self._window, center=False,
                normalized=True, onesided=True, return_complex=True,
            )
            return torch.log1p(1000.0 * (spec.abs().T @ self._filterbank)).numpy()

    def _emit(self, n_ready: int) -> np.ndarray:
        """Frames ``n_frames .. n_ready-1`` from the buffer; drops samples no longer needed."""
        hop = self.cfg.hop_length
        if n_ready <= self.n_frames:
            return np.zeros((0, self.cfg.n_mels), dtype=np.float32)
        start = self.n_frames * hop - self._offset
        stop = (n_ready - 1) * hop + self.cfg.n_fft - self._offset
        frames = self._mel(self._buffer[start:stop])
        self._buffer = self._buffer[n_ready * hop - self._offset :]
        self._offset = n_ready * hop
        self.n_frames = n_ready
        return frames

    def push(self, block: np.ndarray) -> np.ndarray:
        """Append mono samples at ``cfg.sr``; return the mel frames ``[t, n_mels]`` they complete."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 1:
            raise ValueError(f"audio blocks must be mono 1-D arrays, got shape {block.shape}")
        self.n_samples += len(block)
        self._buffer = np.concatenate([self._buffer, block])
        if not self._started:
            if len(self._buffer) <= self._half:
                return np.zeros((0, self.cfg.n_mels), dtype=np.float32)
            # Reflection padding at the start, as torch.stft(center=True, pad_mode="reflect").
            self._buffer = np.concatenate([self._buffer[self._half : 0 : -1], self._buffer])
            self._started = True
        available = self._offset + len(self._buffer)
        n_ready = (available - self.cfg.n_fft) // self.cfg.hop_length + 1 if available >= self.cfg.n_fft else 0
        return self._emit(n_ready)

    def flush(self) -> np.ndarray:
        """End the stream: the remaining frames up to ``1 + n_samples // hop_length`` in all."""
        if not self._started:
            raise ValueError(
                f"stream of {self.n_samples} samples is too short for n_fft={self.cfg.n_fft} "
                f"(needs more than {self._half} samples)"
            )
        self._buffer = np.concatenate([self._buffer, self._buffer[-2 : -self._half - 2 : -1]])
        return self._emit(1 + self.n_samples // self.cfg.hop_length)


class OnlineCRNNTracker:
    """Streaming beat tracker from audio: :class:`OnlineLogMel`, a causal CRNN, the LTM, a decision rule.

    Args:
        crnn: a :class:`beatgrid.models.crnn.CRNN` built with ``causal=True``.
        ltm: the learned temporal model, or None to decide on the CRNN activations.
        mel_cfg: the spectrogram settings the CRNN was trained with; sets ``fps``.
        tracker_options: ``rule``, ``pos_weight`` and the rule's options, as
            :class:`OnlineBeatTracker` takes them.

    ``process_block(audio)`` takes mono float samples at ``mel_cfg.sr`` (any block
    size) and returns the beats confirmed meanwhile; ``flush()`` ends the stream. The
    beats equal those of the offline chain ``log_mel`` -> ``CRNN.forward`` ->
    :func:`track_online`. A beat at time ``b`` is reported once the audio up to
    ``b + 1 / fps + n_fft / 2 / sr`` seconds has been pushed (both rules decide one frame
    after the beat; the ``dbn`` rule later only on a flat-topped peak).
    """

    def __init__(
        self,
        crnn: nn.Module,
        ltm: nn.Module | None,
        mel_cfg: MelConfig = MelConfig(),
        **tracker_options: Any,
    ) -> None:
        if not getattr(crnn, "causal", False):
            raise ValueError("OnlineCRNNTracker needs a causal CRNN (built with causal=True)")
        self.crnn = crnn.eval()
        self.mel = OnlineLogMel(mel_cfg)
        self.tracker = OnlineBeatTracker(ltm, mel_cfg.fps, **tracker_options)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.mel.reset()
        self.tracker.reset()
        self._crnn_state = None

    @torch.inference_mode()
    def _track(self, mel_frames: np.ndarray) -> list[BeatEvent]:
        if len(mel_frames) == 0:
            return []
        logits, self._crnn_state = self.crnn.step(torch.from_numpy(mel_frames)[None], self._crnn_state)
        return self.tracker.process(torch.sigmoid(logits[0]).numpy())

    def process_block(self, audio: np.ndarray) -> list[BeatEvent]:
        """Push mono samples at ``mel_cfg.sr``; return the beats confirmed by them."""
        return self._track(self.mel.push(audio))

    def flush(self) -> list[BeatEvent]:
        """End the stream; return the beats confirmed by its last frames."""
        return self._track(self.mel.flush())
