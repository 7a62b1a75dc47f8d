"""The embedded demo dataset: deterministic synthesized music with exactly known beats.

Every track is rendered from ``(seed, index, duration_s, sr)`` alone, with no downloads
and no data files, so the default workflow can train on a fresh machine. The default
run trains the CRNN on nothing else, so the tracks aim for the variety of real
recordings rather than for clean clicks:

* **styles** (:data:`STYLES`): rock, metal, electronic, funk, hiphop, reggae, latin,
  jazz, blues, country, waltz, ballad, folk, prog, and the drumless ambient and
  classical. Styles are dealt in blocks of ``len(STYLES)`` indices, each block a
  seeded permutation, so any ``len(STYLES)`` consecutive indices cover every style.
  :data:`EXTRA_STYLES`, dealt only when a ``styles`` list names them (neither the default
  demo nor ``configs/pretrain.yaml`` does: at its budget they lowered real-clip beat F,
  benchmarks/RESULTS.md section 11), aim at what demo-trained models get wrong on real music: drumless
  orchestral, solo piano and choral music with rubato whose bars are marked only by
  changes of harmony, extreme metal (tremolo guitars, blast beats, double kick),
  syncopated breakbeat and afro grooves whose kick avoids the beat, and a jazz combo
  that often plays without drums.
* **meters**: 4/4, 3/4, 6/8 (two dotted-quarter beats per bar, ternary subdivision),
  12/8 (four ternary beats), 5/4 and 7/4. ``beats_per_bar`` counts the annotated
  beats (the tactus), e.g. 2 for 6/8.
* **tempo**: 60-200 BPM at the annotated beat level, two decimals (e.g. 93.27);
  most tracks keep it constant, some drift gradually, follow a rubato curve, or
  change abruptly at a bar line (those have ``bpm=None``).
* **instruments**: drum kits of several timbres (kick, snare, clap, rim, brushes,
  hats, ride, crash, toms, congas, bongos, clave, cowbell, shaker, tambourine),
  bass (plucked Karplus-Strong, upright, synth, sub, 808), piano (additive, two-stage
  decay, hammer noise), FM electric piano, drawbar organ, accordion, plucked and
  strummed guitars, distorted power chords, strings, pads, brass stabs, mallets,
  bells, flute-like leads, and sung vowels (formant-filtered voice with scoops and
  vibrato) or a choir pad; melodies, arpeggios, walking bass, montuno, skank, oom-pah
  and funk stabs; swing, syncopation and per-instrument micro-timing.
* **production**: arrangement sections with breakdowns and sparse intros, fills and
  crashes at phrase ends, sidechain pumping, per-part EQ, a convolution reverb
  (exponentially decaying filtered noise), bus saturation, lo-fi band limiting,
  a noise floor, vinyl crackle or mains hum, fades, and a random output level.

Annotation policy (the same for every track):

* Beats are the metrical grid at the tactus level. Expressive timing moves the
  notes, never the annotations: each part gets a small constant offset (drums
  about 2 ms, others up to ~10 ms, zero on average over tracks) and per-note jitter.
* Annotations start at the first beat on which rhythmic music plays: after a
  silent or beatless (free-time pad) intro, at a pickup beat when the music starts
  with an anacrusis, and at the first beat at or after 0 s when the track is an
  excerpt cut out of a running piece. They run to the end of the audio, through
  breakdowns without drums (the harmony keeps the grid).
* The label JSON (constant-tempo tracks only) is the DJ beatgrid: ``bpm`` and
  ``downbeatOffset`` (the first annotated downbeat). Its grid, expanded over the
  whole track as :func:`beatgrid.annotations.label_grid_to_annotation` does,
  contains every annotated beat (within 1 us) and extends it back over any intro.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import soundfile as sf
from scipy import signal

from beatgrid.annotations import LabelGrid, write_beats_file, write_label_json
from beatgrid.io import atomic_write

__all__ = [
    "ALL_STYLES",
    "EXTRA_STYLES",
    "STYLES",
    "check_styles",
    "SynthTrack",
    "synthesize_track",
    "track_stem",
    "track_style",
    "write_demo_batch",
]

#: Bpm range of the annotated beat level, over all styles.
BPM_MIN = 60.0
BPM_MAX = 200.0


# =========================================================================== public types


@dataclass
class SynthTrack:
    """One rendered demo track and its exact annotation."""

    audio: np.ndarray  #: float32 mono in [-1, 1], ``sr`` samples per second
    sr: int  #: sample rate in Hz
    beat_times: np.ndarray  #: annotated beats in seconds, sorted, in [0, duration)
    beat_positions: np.ndarray  #: int position of each beat in its bar, 1 = downbeat
    bpm: float | None  #: the constant tempo, or None when the tempo drifts or changes
    beats_per_bar: int  #: annotated beats per bar (2 for 6/8, 4 for 12/8)
    style: str  #: one of :data:`STYLES`
    meter: str = ""  #: time signature as written, e.g. ``"6/8"``
    tempo_kind: str = "constant"  #: constant | drift | rubato | change
    has_drums: bool = True  #: whether a drum kit plays anywhere in the track
    intro: str = "none"  #: none | pickup | excerpt | silence | beatless
    swing_ratio: float = 0.5  #: where the swung off-beat falls in its pair (0.5 = straight)

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sr

    def downbeat_times(self) -> np.ndarray:
        """Times of the annotated downbeats (position 1) in seconds."""
        return self.beat_times[self.beat_positions == 1]

    @property
    def downbeat_offset_s(self) -> float | None:
        """Time of the first annotated downbeat in seconds (None if there is none)."""
        downbeats = self.downbeat_times()
        return float(downbeats[0]) if len(downbeats) else None


def track_stem(index: int) -> str:
    """File stem of demo track ``index``: ``track_stem(7) == "track0007"``."""
    if index < 0:
        raise ValueError(f"demo track index must be >= 0, got {index}")
    return f"track{index:04d}"


# =========================================================================== randomness


def _stream(seed: int, index: int, name: str) -> np.random.Generator:
    """An independent random stream for one aspect (``name``) of one track."""
    return np.random.default_rng([seed, index, zlib.crc32(name.encode())])


def _choice(rng: np.random.Generator, options: Sequence, weights: Sequence[float] | None = None):
    """One element of ``options`` (any objects), optionally weighted."""
    if weights is None:
        return options[int(rng.integers(len(options)))]
    p = np.asarray(weights, dtype=np.float64)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _db(value_db: float) -> float:
    return float(10.0 ** (value_db / 20.0))


# =========================================================================== styles


@dataclass(frozen=True)
class _Style:
    """How a style is played; every range is sampled per track."""

    name: str
    meters: tuple[tuple[str, float], ...]  # (meter, weight)
    bpm_range: tuple[float, float]  # annotated-beat tempo range
    drums: float  # probability of a drum kit
    kits: tuple[str, ...]  # drum kit flavours
    swing: tuple[float, float, float] = (0.0, 0.5, 0.5)  # (probability, min ratio, max ratio)
    swing_unit: float = 1.0  # beats per swung pair: 1.0 swings 8ths, 0.5 swings 16ths
    bass: tuple[str, ...] = ("bass_finger",)
    bass_patterns: tuple[str, ...] = ("root_beats",)
    comp: tuple[str, ...] = ("piano",)
    comp_patterns: tuple[str, ...] = ("block_beats",)
    arp: float = 0.2  # probability of an arpeggio part
    arp_instruments: tuple[str, ...] = ("pluck", "mallet", "piano")
    pad: float = 0.3  # probability of a sustained pad
    lead: float = 0.5  # probability of a melody
    lead_instruments: tuple[str, ...] = ("synth_lead", "flute", "epiano")
    progressions: tuple[str, ...] = ("pop", "minor")
    chord_bars: tuple[float, ...] = (1.0,)  # bars per chord
    human_s: float = 0.008  # timing jitter (std, s) of pitched parts; drums get less
    drift: float = 0.1  # probability of a gradual drift (or rubato)
    change: float = 0.06  # probability of an abrupt tempo change
    rubato: bool = False  # drift is a free rubato curve instead of a ramp / wave
    reverb_s: tuple[float, float] = (0.3, 1.5)  # RT60 range
    drive: tuple[float, float] = (1.0, 1.5)  # bus saturation range
    crackle: float = 0.0  # probability of vinyl crackle


_STYLE_LIST: tuple[_Style, ...] = (
    _Style(
        "rock", (("4/4", 0.85), ("3/4", 0.08), ("12/8", 0.07)), (88, 168), 1.0,
        ("acoustic", "rock"),
        bass=("bass_pick", "bass_finger"), bass_patterns=("root_eighths", "pop", "rock"),
        comp=("dist_guitar", "clean_guitar", "piano", "organ"),
        comp_patterns=("eighths", "block_bar", "strum", "half"),
        lead=0.6, lead_instruments=("vocal", "vocal", "synth_lead", "organ", "clean_guitar"),
        progressions=("rock", "pop", "pop2", "minor", "mixolydian"), chord_bars=(1.0, 2.0, 0.5),
        human_s=0.006, drift=0.12, drive=(1.2, 2.5),
    ),
    _Style(
        "metal", (("4/4", 0.9), ("12/8", 0.1)), (100, 200), 1.0, ("rock",),
        bass=("bass_pick",), bass_patterns=("root_eighths", "root_sixteenths"),
        comp=("dist_guitar",), comp_patterns=("eighths", "chugs", "block_bar"),
        arp=0.1, pad=0.15, lead=0.3, lead_instruments=("synth_lead", "dist_lead"),
        progressions=("metal", "minor", "phrygian"), chord_bars=(1.0, 0.5),
        human_s=0.004, drift=0.05, reverb_s=(0.3, 1.0), drive=(1.5, 3.0),
    ),
    _Style(
        "electronic", (("4/4", 1.0),), (112, 176), 1.0, ("808", "909", "lofi"),
        bass=("bass_synth", "bass_sub", "bass_808"),
        bass_patterns=("offbeat", "octave", "sub", "root_eighths"),
        comp=("synth_stab", "epiano", "pad_pluck"), comp_patterns=("offbeats", "stabs16", "block_bar"),
        arp=0.7, arp_instruments=("synth_pluck", "bell", "mallet"), pad=0.6, lead=0.5,
        lead_instruments=("synth_lead", "synth_square", "bell", "vocal"),
        progressions=("minor", "minor2", "pop3", "one_chord"), chord_bars=(1.0, 2.0),
        human_s=0.0, drift=0.0, change=0.03, reverb_s=(0.5, 2.5), drive=(1.0, 2.0),
    ),
    _Style(
        "funk", (("4/4", 1.0),), (86, 120), 1.0, ("acoustic", "funk"),
        swing=(0.35, 0.53, 0.6), swing_unit=0.5,
        bass=("bass_finger", "bass_synth"), bass_patterns=("funk",),
        comp=("clean_guitar", "epiano", "organ", "clav"), comp_patterns=("stabs16", "offbeats"),
        arp=0.1, pad=0.15, lead=0.6, lead_instruments=("vocal", "brass", "synth_lead", "organ"),
        progressions=("dorian", "one_chord", "funk"), chord_bars=(1.0, 2.0),
        human_s=0.007, drift=0.05, drive=(1.1, 1.8),
    ),
    _Style(
        "hiphop", (("4/4", 1.0),), (70, 102), 1.0, ("lofi", "808", "acoustic"),
        swing=(0.7, 0.54, 0.64), swing_unit=0.5,
        bass=("bass_808", "bass_sub", "bass_finger"), bass_patterns=("hiphop", "sub"),
        comp=("epiano", "piano", "pad_pluck", "strings"), comp_patterns=("block_bar", "half", "stabs16"),
        arp=0.3, pad=0.3, lead=0.5, lead_instruments=("vocal", "flute", "bell", "epiano"),
        progressions=("minor", "minor2", "jazz_minor", "dorian"), chord_bars=(1.0, 2.0),
        human_s=0.01, drift=0.03, reverb_s=(0.2, 1.2), drive=(1.0, 2.0), crackle=0.5,
    ),
    _Style(
        "reggae", (("4/4", 1.0),), (62, 95), 1.0, ("acoustic", "lofi"),
        swing=(0.4, 0.55, 0.62), swing_unit=1.0,
        bass=("bass_finger", "bass_sub"), bass_patterns=("reggae",),
        comp=("clean_guitar", "organ", "piano"), comp_patterns=("backbeat", "offbeats"),
        arp=0.1, pad=0.1, lead=0.6, lead_instruments=("vocal", "vocal", "organ", "brass", "flute"),
        progressions=("pop", "minor", "one_chord", "pop2"), chord_bars=(1.0, 2.0),
        human_s=0.008, drift=0.05, reverb_s=(0.4, 1.8), crackle=0.2,
    ),
    _Style(
        "latin", (("4/4", 1.0),), (88, 200), 1.0, ("latin",),
        bass=("bass_finger", "bass_upright"), bass_patterns=("tumbao", "root_beats", "bossa"),
        comp=("piano", "nylon", "brass"), comp_patterns=("montuno", "montuno", "charleston", "block_beats", "offbeats"),
        arp=0.2, pad=0.1, lead=0.6, lead_instruments=("vocal", "brass", "flute", "mallet"),
        progressions=("minor2", "pop2", "jazz251", "andalusian"), chord_bars=(1.0, 2.0),
        human_s=0.008, drift=0.08, reverb_s=(0.3, 1.4),
    ),
    _Style(
        "jazz", (("4/4", 0.8), ("3/4", 0.2)), (96, 200), 0.92, ("jazz",),
        swing=(0.95, 0.58, 0.68), swing_unit=1.0,
        bass=("bass_upright",), bass_patterns=("walking",),
        comp=("piano", "epiano", "clean_guitar"), comp_patterns=("charleston", "jazz_comp"),
        arp=0.05, pad=0.05, lead=0.6, lead_instruments=("brass", "vocal", "flute", "mallet", "piano"),
        progressions=("jazz251", "jazz_minor", "blues"), chord_bars=(1.0, 0.5),
        human_s=0.012, drift=0.25, reverb_s=(0.4, 1.6),
    ),
    _Style(
        "blues", (("12/8", 0.7), ("4/4", 0.3)), (62, 132), 1.0, ("acoustic", "jazz"),
        swing=(0.9, 0.6, 0.67), swing_unit=1.0,
        bass=("bass_finger", "bass_upright"), bass_patterns=("boogie", "walking"),
        comp=("piano", "organ", "clean_guitar"), comp_patterns=("shuffle_comp", "block_beats", "backbeat"),
        arp=0.05, pad=0.1, lead=0.7, lead_instruments=("vocal", "organ", "brass", "clean_guitar"),
        progressions=("blues",), human_s=0.01, drift=0.15, reverb_s=(0.3, 1.5), crackle=0.15,
    ),
    _Style(
        "country", (("4/4", 0.8), ("3/4", 0.2)), (96, 176), 0.9, ("acoustic", "jazz"),
        bass=("bass_finger", "bass_upright"), bass_patterns=("boomchick",),
        comp=("clean_guitar", "nylon", "piano"), comp_patterns=("strum", "backbeat"),
        arp=0.25, arp_instruments=("pluck", "mallet"), pad=0.1, lead=0.7,
        lead_instruments=("vocal", "vocal", "clean_guitar", "fiddle", "organ"),
        progressions=("pop2", "pop", "country"), chord_bars=(1.0, 2.0),
        human_s=0.008, drift=0.1, reverb_s=(0.3, 1.2),
    ),
    _Style(
        "waltz", (("3/4", 1.0),), (78, 190), 0.6, ("jazz", "acoustic"),
        bass=("bass_upright", "bass_finger", "tuba"), bass_patterns=("oompah",),
        comp=("piano", "strings", "accordion"), comp_patterns=("oompah",),
        arp=0.3, pad=0.3, lead=0.7, lead_instruments=("strings", "flute", "accordion", "piano"),
        progressions=("pop2", "pop", "minor2"), chord_bars=(1.0, 2.0),
        human_s=0.012, drift=0.2, reverb_s=(0.6, 2.2),
    ),
    _Style(
        "ballad", (("4/4", 0.6), ("12/8", 0.2), ("3/4", 0.2)), (60, 88), 0.7,
        ("acoustic", "jazz", "808"),
        bass=("bass_finger", "bass_sub"), bass_patterns=("sustain", "pop"),
        comp=("piano", "epiano", "nylon"), comp_patterns=("arp8", "block_beats", "alberti"),
        arp=0.2, pad=0.6, lead=0.7, lead_instruments=("vocal", "vocal", "strings", "flute", "synth_lead", "piano"),
        progressions=("pop", "pop3", "doowop", "minor"), chord_bars=(1.0, 0.5),
        human_s=0.012, drift=0.25, reverb_s=(0.8, 2.6),
    ),
    _Style(
        "folk", (("6/8", 0.7), ("4/4", 0.3)), (60, 112), 0.6, ("acoustic", "jazz"),
        bass=("bass_upright", "bass_finger"), bass_patterns=("ternary", "root_beats"),
        comp=("nylon", "clean_guitar", "piano", "accordion"), comp_patterns=("strum", "arp_ternary"),
        arp=0.3, arp_instruments=("pluck", "mallet", "harp"), pad=0.15, lead=0.7,
        lead_instruments=("vocal", "fiddle", "flute", "accordion"),
        progressions=("pop2", "minor", "andalusian", "country"), chord_bars=(1.0, 2.0),
        human_s=0.012, drift=0.25, reverb_s=(0.3, 1.6),
    ),
    _Style(
        "prog", (("5/4", 0.45), ("7/4", 0.35), ("4/4", 0.2)), (84, 160), 1.0, ("rock", "acoustic"),
        bass=("bass_pick", "bass_synth"), bass_patterns=("root_eighths", "root_beats"),
        comp=("dist_guitar", "organ", "synth_stab", "piano"), comp_patterns=("eighths", "block_beats"),
        arp=0.5, arp_instruments=("synth_pluck", "mallet", "pluck"), pad=0.3, lead=0.4,
        lead_instruments=("synth_lead", "organ"),
        progressions=("minor", "dorian", "mixolydian"), chord_bars=(1.0,),
        human_s=0.005, drift=0.08, drive=(1.2, 2.5),
    ),
    _Style(
        "ambient", (("4/4", 0.7), ("3/4", 0.3)), (60, 112), 0.0, ("808",),
        bass=("bass_sub", "bass_synth"), bass_patterns=("sustain", "root_beats"),
        comp=("pad_pluck", "mallet", "epiano", "harp", "bell"), comp_patterns=("arp8", "arp_up", "block_beats"),
        arp=0.6, arp_instruments=("bell", "mallet", "synth_pluck", "pluck"), pad=0.9, lead=0.3,
        lead_instruments=("flute", "bell", "synth_lead", "choir"),
        progressions=("pop3", "minor", "one_chord", "lydian"), chord_bars=(1.0, 2.0),
        human_s=0.004, drift=0.1, reverb_s=(1.5, 3.0),
    ),
    _Style(
        "classical", (("3/4", 0.4), ("4/4", 0.45), ("6/8", 0.15)), (60, 170), 0.0, ("jazz",),
        bass=("cello", "bass_upright"), bass_patterns=("root_beats", "oompah", "arp_bass"),
        comp=("piano", "strings", "harp"), comp_patterns=("alberti", "block_beats", "oompah", "arp_ternary"),
        arp=0.2, arp_instruments=("harp", "piano", "mallet"), pad=0.2, lead=0.8,
        lead_instruments=("strings", "flute", "piano", "fiddle"),
        progressions=("classical", "pop2", "minor2"), chord_bars=(1.0, 0.5),
        human_s=0.015, drift=0.55, change=0.1, rubato=True, reverb_s=(1.0, 2.8),
    ),
)

# Styles where trackers trained on the demo fail on real music (issue 13): no drums with
# expressive tempo (the downbeat heard only as a change of harmony), dense distorted
# guitars over fast double kick and blast beats, syncopated breaks whose kick avoids
# the beat, a drumless or brushed jazz combo. Selectable (``styles=``), not in the
# default demo, so the demo's tracks stay as they were.
_EXTRA_STYLE_LIST: tuple[_Style, ...] = (
    _Style(
        "orchestral", (("4/4", 0.45), ("3/4", 0.35), ("6/8", 0.2)), (60, 150), 0.0, ("jazz",),
        bass=("cello", "tuba", "bass_upright"), bass_patterns=("sustain", "root_beats", "oompah"),
        comp=("strings", "choir", "brass", "organ"), comp_patterns=("block_beats", "oompah", "half", "block_bar"),
        arp=0.3, arp_instruments=("harp", "strings", "mallet"), pad=0.8, lead=0.8,
        lead_instruments=("strings", "flute", "brass", "choir", "fiddle"),
        progressions=("classical", "minor2", "andalusian", "pop2"), chord_bars=(1.0,),
        human_s=0.02, drift=0.75, change=0.1, rubato=True, reverb_s=(1.6, 3.2), drive=(1.0, 1.2),
    ),
    _Style(
        "piano_solo", (("4/4", 0.45), ("3/4", 0.4), ("6/8", 0.15)), (60, 170), 0.0, ("jazz",),
        bass=("piano",), bass_patterns=("root_beats", "oompah", "arp_bass", "sustain"),
        comp=("piano",), comp_patterns=("alberti", "arp8", "arp_up", "block_beats", "oompah", "arp_ternary"),
        arp=0.0, pad=0.0, lead=0.85, lead_instruments=("piano",),
        progressions=("classical", "pop2", "minor2", "jazz251", "andalusian"), chord_bars=(1.0, 0.5),
        human_s=0.02, drift=0.7, change=0.1, rubato=True, reverb_s=(0.8, 2.4), drive=(1.0, 1.2),
    ),
    _Style(
        "choral", (("4/4", 0.6), ("3/4", 0.4)), (60, 120), 0.0, ("jazz",),
        bass=("cello", "choir"), bass_patterns=("root_beats", "sustain"),
        comp=("choir", "organ"), comp_patterns=("block_beats", "block_beats", "half"),
        arp=0.0, pad=0.4, lead=0.8, lead_instruments=("vocal", "choir"),
        progressions=("classical", "pop2", "minor2"), chord_bars=(1.0,),
        human_s=0.012, drift=0.7, change=0.05, rubato=True, reverb_s=(1.2, 2.6), drive=(1.0, 1.1),
    ),
    _Style(
        "extreme_metal", (("4/4", 0.9), ("3/4", 0.1)), (130, 200), 1.0, ("rock",),
        bass=("bass_pick",), bass_patterns=("root_sixteenths", "root_eighths"),
        comp=("dist_guitar",), comp_patterns=("tremolo", "chugs", "eighths"),
        arp=0.0, pad=0.1, lead=0.3, lead_instruments=("dist_lead", "vocal"),
        progressions=("metal", "phrygian", "minor"), chord_bars=(1.0, 0.5),
        human_s=0.003, drift=0.03, change=0.08, reverb_s=(0.2, 0.8), drive=(2.5, 4.0),
    ),
    _Style(
        "breakbeat", (("4/4", 1.0),), (84, 180), 1.0, ("acoustic", "909", "lofi", "funk"),
        swing=(0.3, 0.52, 0.58), swing_unit=0.5,
        bass=("bass_synth", "bass_sub", "bass_808", "bass_finger"), bass_patterns=("funk", "hiphop", "sub", "offbeat"),
        comp=("synth_stab", "epiano", "organ", "clean_guitar"), comp_patterns=("stabs16", "offbeats", "anticipation"),
        arp=0.3, arp_instruments=("synth_pluck", "bell"), pad=0.5, lead=0.4,
        lead_instruments=("vocal", "synth_lead", "brass"),
        progressions=("minor", "dorian", "one_chord", "funk"), chord_bars=(1.0, 2.0),
        human_s=0.004, drift=0.02, change=0.03, reverb_s=(0.3, 1.5), drive=(1.2, 2.5),
    ),
    _Style(
        "afro", (("4/4", 0.8), ("12/8", 0.2)), (96, 136), 1.0, ("latin", "acoustic"),
        swing=(0.4, 0.52, 0.6), swing_unit=0.5,
        bass=("bass_finger", "bass_synth"), bass_patterns=("funk", "tumbao", "hiphop"),
        comp=("clean_guitar", "organ", "brass", "epiano"), comp_patterns=("anticipation", "stabs16", "montuno", "offbeats"),
        arp=0.4, arp_instruments=("mallet", "pluck", "clean_guitar"), pad=0.2, lead=0.6,
        lead_instruments=("vocal", "brass", "flute"),
        progressions=("dorian", "one_chord", "mixolydian", "funk"), chord_bars=(1.0, 2.0),
        human_s=0.008, drift=0.05, reverb_s=(0.3, 1.4),
    ),
    _Style(
        "jazz_combo", (("4/4", 0.85), ("3/4", 0.15)), (70, 200), 0.45, ("jazz",),
        swing=(0.95, 0.56, 0.68), swing_unit=1.0,
        bass=("bass_upright",), bass_patterns=("walking", "walking", "root_beats"),
        comp=("piano", "epiano", "clean_guitar"), comp_patterns=("jazz_comp", "charleston", "anticipation"),
        arp=0.0, pad=0.0, lead=0.95, lead_instruments=("brass", "brass", "vocal", "flute", "synth_lead"),
        progressions=("jazz251", "jazz_minor", "blues"), chord_bars=(1.0, 0.5),
        human_s=0.016, drift=0.35, change=0.05, reverb_s=(0.3, 1.4),
    ),
)

#: The default demo's style names, in a fixed order (the style of a track: :func:`track_style`).
STYLES: tuple[str, ...] = tuple(style.name for style in _STYLE_LIST)
#: Styles only rendered when asked for (``styles=`` of :func:`synthesize_track`).
EXTRA_STYLES: tuple[str, ...] = tuple(style.name for style in _EXTRA_STYLE_LIST)
#: Every style that can be asked for.
ALL_STYLES: tuple[str, ...] = STYLES + EXTRA_STYLES
_STYLE_BY_NAME = {style.name: style for style in _STYLE_LIST + _EXTRA_STYLE_LIST}

# meter -> (beats per bar, subdivision steps per beat)
_METERS = {"4/4": (4, 4), "3/4": (3, 4), "5/4": (5, 4), "7/4": (7, 4), "6/8": (2, 3), "12/8": (4, 3)}


def check_styles(styles: Sequence[str] | None) -> tuple[str, ...]:
    """The style list to deal from: :data:`STYLES` for None, else ``styles`` (names of
    :data:`ALL_STYLES`; a name listed twice is dealt twice as often)."""
    if styles is None:
        return STYLES
    styles = tuple(styles)
    unknown = sorted(set(styles) - set(ALL_STYLES))
    if not styles or unknown:
        raise ValueError(f"unknown synth styles {unknown or '(none given)'}; known: {', '.join(ALL_STYLES)}")
    return styles


def track_style(index: int, seed: int, styles: Sequence[str] | None = None) -> str:
    """Style of demo track ``index`` for ``seed`` (cheap: renders nothing).

    Indices are dealt in blocks of ``len(styles)`` (default :data:`STYLES`), each block
    a seeded permutation of the styles, so the style depends on ``(seed, index,
    styles)`` only and any ``len(styles)`` consecutive indices cover every style once.
    """
    if index < 0 or seed < 0:
        raise ValueError(f"index and seed must be >= 0, got index={index}, seed={seed}")
    styles = check_styles(styles)
    block, slot = divmod(index, len(styles))
    order = np.random.default_rng([seed, block, zlib.crc32(b"style")]).permutation(len(styles))
    return styles[int(order[slot])]


# =========================================================================== DSP helpers


@lru_cache(maxsize=512)
def _sos(kind: str, cutoff_hz: float | tuple[float, float], sr: int, order: int = 2) -> np.ndarray:
    """Butterworth second-order sections (cached; cutoffs are clamped below Nyquist)."""
    nyquist = sr / 2.0
    if isinstance(cutoff_hz, tuple):
        low = min(max(cutoff_hz[0], 10.0), nyquist * 0.9)
        high = min(max(cutoff_hz[1], low * 1.1), nyquist * 0.95)
        return signal.butter(order, (low, high), btype=kind, fs=sr, output="sos")
    return signal.butter(order, min(max(cutoff_hz, 10.0), nyquist * 0.95), btype=kind, fs=sr, output="sos")


def _filter(x: np.ndarray, kind: str, cutoff_hz, sr: int, order: int = 2) -> np.ndarray:
    """Filter ``x`` with a Butterworth ``lowpass``/``highpass``/``bandpass`` (cutoffs in Hz)."""
    if isinstance(cutoff_hz, (list, tuple)):
        cutoff_hz = (float(round(cutoff_hz[0])), float(round(cutoff_hz[1])))
    else:
        cutoff_hz = float(round(cutoff_hz))
    return signal.sosfilt(_sos(kind, cutoff_hz, sr, order), x)


def _fade_edges(x: np.ndarray, sr: int, attack_s: float = 0.002, release_s: float = 0.01) -> np.ndarray:
    """Short linear fades so that truncated notes do not click."""
    n_a = min(len(x), max(1, int(attack_s * sr)))
    n_r = min(len(x), max(1, int(release_s * sr)))
    x[:n_a] *= np.linspace(0.0, 1.0, n_a, endpoint=False)
    x[len(x) - n_r:] *= np.linspace(1.0, 0.0, n_r)
    return x


def _saw(phase_cycles: np.ndarray, dt: float) -> np.ndarray:
    """Band-limited (polyBLEP) sawtooth for a phase in cycles and increment ``dt``/sample."""
    p = phase_cycles % 1.0
    out = 2.0 * p - 1.0
    dt = min(max(dt, 1e-6), 0.5)
    lo = p < dt
    x = p[lo] / dt
    out[lo] -= x + x - x * x - 1.0
    hi = p > 1.0 - dt
    x = (p[hi] - 1.0) / dt
    out[hi] -= x * x + x + x + 1.0
    return out


def _wavetable(amplitudes: np.ndarray, size: int = 2048) -> np.ndarray:
    """One cycle of a sum of harmonics 1..len(amplitudes) (amplitudes per harmonic)."""
    k = np.arange(1, len(amplitudes) + 1)[:, None]
    phase = np.arange(size)[None, :] / size
    return (amplitudes[:, None] * np.sin(2 * np.pi * k * phase)).sum(axis=0)


def _lookup(table: np.ndarray, phase_cycles: np.ndarray) -> np.ndarray:
    size = len(table)
    return table[(phase_cycles * size).astype(np.int64) & (size - 1)]


def _pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Approximately 1/f noise (Paul Kellet's economy filter), unit RMS."""
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    x = signal.lfilter(b, a, rng.standard_normal(n))
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _active_rms(x: np.ndarray, sr: int) -> float:
    """RMS over the louder half of the 100 ms frames that are not silent."""
    hop = max(1, sr // 10)
    n = len(x) // hop
    if n == 0:
        return float(np.sqrt(np.mean(x**2)) + 1e-12)
    energy = np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)
    energy = energy[energy > energy.max() * 1e-4] if energy.max() > 0 else energy
    if len(energy) == 0:
        return 1e-12
    top = np.sort(energy)[len(energy) // 2:]
    return float(np.sqrt(np.mean(top)) + 1e-12)


def _add_at(out: np.ndarray, sound: np.ndarray, start: int, gain: float) -> None:
    """``out[start:] += gain * sound``, cropping at both ends of ``out``."""
    if start >= len(out) or start + len(sound) <= 0:
        return
    skip = max(0, -start)
    start = max(0, start)
    n = min(len(sound) - skip, len(out) - start)
    out[start:start + n] += gain * sound[skip:skip + n]


def _midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


# =========================================================================== drums


_DRUM_VOICES = (
    "kick", "snare", "clap", "rim", "brush", "chat", "ohat", "phat", "ride", "crash",
    "tom_hi", "tom_mid", "tom_lo", "conga_hi", "conga_lo", "bongo", "clave", "cowbell",
    "shaker", "tamb",
)
_VELOCITY = {"X": 1.0, "x": 0.75, "o": 0.5, "g": 0.28}
# voice -> mix level (dB) around which each kit samples its own levels
_DRUM_LEVEL_DB = {
    "kick": 0.0, "snare": -1.0, "clap": -2.0, "rim": -7.0, "brush": -6.0, "chat": -11.0,
    "ohat": -13.0, "phat": -14.0, "ride": -13.0, "crash": -11.0, "tom_hi": -3.0, "tom_mid": -3.0,
    "tom_lo": -3.0, "conga_hi": -6.0, "conga_lo": -6.0, "bongo": -8.0, "clave": -10.0,
    "cowbell": -13.0, "shaker": -15.0, "tamb": -14.0,
}


@dataclass
class _Kit:
    """Per-track drum timbres: a few rendered variants (round robin) per voice."""

    sr: int
    flavour: str
    params: dict[str, float]
    rng: np.random.Generator
    levels_db: dict[str, float] = field(default_factory=dict)
    variants: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def sound(self, voice: str) -> np.ndarray:
        if voice not in self.variants:
            self.variants[voice] = [
                _normalise_peak(_render_drum(voice, self.params, self.sr, self.rng, jitter))
                for jitter in (1.0, 0.97, 1.03)
            ]
        return _choice(self.rng, self.variants[voice])


def _normalise_peak(x: np.ndarray) -> np.ndarray:
    return x / (np.max(np.abs(x)) + 1e-12)


def _make_kit(flavour: str, sr: int, rng: np.random.Generator) -> _Kit:
    """Sample the parameters of a kit ``flavour``: 808, 909, rock, jazz and lofi shift
    the defaults (an acoustic kit, also used for funk and latin)."""
    u = rng.uniform
    p = {
        "kick_f": u(45, 62), "kick_ratio": u(2.5, 5.0), "kick_sweep": u(0.012, 0.04),
        "kick_decay": u(0.12, 0.3), "kick_click": u(0.1, 0.5), "kick_drive": u(1.0, 2.0),
        "snare_f": u(170, 250), "snare_tone": u(0.3, 0.7), "snare_decay": u(0.1, 0.22),
        "snare_low": u(1200, 2500), "snare_high": u(6000, 9500),
        "hat_scale": u(0.9, 1.5), "hat_hp": u(5500, 8500), "hat_decay": u(0.025, 0.07),
        "ohat_decay": u(0.2, 0.5), "ride_decay": u(0.7, 1.6), "crash_decay": u(1.0, 2.2),
        "tom_f": u(95, 150), "conga_f": u(190, 300), "bongo_f": u(340, 480),
        "clave_f": u(1900, 2600), "cow_scale": u(0.9, 1.2), "shaker_decay": u(0.04, 0.09),
        "bright": u(0.8, 1.2),
    }
    if flavour == "808":
        p.update(kick_f=u(40, 52), kick_ratio=u(1.8, 3.0), kick_decay=u(0.35, 0.8), kick_click=u(0.0, 0.15),
                 snare_tone=u(0.5, 0.8), hat_decay=u(0.02, 0.045))
    elif flavour == "909":
        p.update(kick_ratio=u(4.0, 6.5), kick_sweep=u(0.008, 0.02), kick_click=u(0.4, 0.9),
                 kick_drive=u(1.5, 3.0), snare_tone=u(0.25, 0.45))
    elif flavour == "rock":
        p.update(kick_click=u(0.4, 0.8), kick_decay=u(0.1, 0.2), snare_decay=u(0.16, 0.3), snare_tone=u(0.3, 0.5))
    elif flavour == "jazz":
        p.update(kick_f=u(55, 75), kick_decay=u(0.15, 0.35), kick_click=u(0.05, 0.2), snare_tone=u(0.2, 0.4),
                 snare_decay=u(0.08, 0.16), ride_decay=u(1.2, 2.2))
    elif flavour == "lofi":
        p.update(snare_high=u(3500, 6000), hat_hp=u(4500, 6500), kick_drive=u(1.5, 3.5), bright=u(0.6, 0.9))
    kit = _Kit(sr=sr, flavour=flavour, params=p, rng=rng)
    kit.levels_db = {voice: level + rng.uniform(-2.5, 2.5) for voice, level in _DRUM_LEVEL_DB.items()}
    return kit


def _metallic(n: int, sr: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """The six detuned square waves of the classic analogue hi-hat, plus noise."""
    t = np.arange(n) / sr
    ratios = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)
    x = sum(np.sign(np.sin(2 * np.pi * f * scale * t + rng.uniform(0, 2 * np.pi))) for f in ratios)
    return x / 6.0 + 0.6 * rng.standard_normal(n)


def _render_drum(voice: str, p: dict[str, float], sr: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Render one hit of ``voice`` with kit parameters ``p`` (scaled by ``jitter``)."""
    noise = rng.standard_normal
    if voice in ("kick", "tom_hi", "tom_mid", "tom_lo", "conga_hi", "conga_lo", "bongo"):
        if voice == "kick":
            f_end, ratio, sweep, decay = p["kick_f"], p["kick_ratio"], p["kick_sweep"], p["kick_decay"]
            click, drive = p["kick_click"], p["kick_drive"]
        elif voice.startswith("tom"):
            f_end = p["tom_f"] * {"tom_hi": 1.35, "tom_mid": 1.0, "tom_lo": 0.72}[voice]
            ratio, sweep, decay, click, drive = 1.5, 0.05, 0.28, 0.3, 1.0
        elif voice.startswith("conga"):
            f_end = p["conga_f"] * (1.0 if voice == "conga_hi" else 0.72)
            ratio, sweep, decay, click, drive = 1.15, 0.02, 0.16, 0.5, 1.0
        else:
            f_end, ratio, sweep, decay, click, drive = p["bongo_f"], 1.1, 0.01, 0.08, 0.5, 1.0
        f_end *= jitter
        n = int(sr * min(decay * 5.0, 1.8))
        t = np.arange(n) / sr
        freq = f_end * (1.0 + (ratio - 1.0) * np.exp(-t / sweep))
        body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / (decay * jitter))
        tick = _filter(noise(n), "highpass", 2000, sr) * np.exp(-t / 0.004)
        x = body + click * tick
        if drive > 1.0:
            x = np.tanh(drive * x) / np.tanh(drive)
        return x
    if voice in ("snare", "rim", "clap", "brush"):
        if voice == "snare":
            n = int(sr * p["snare_decay"] * 4)
            t = np.arange(n) / sr
            f = p["snare_f"] * jitter
            tone = (np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * 1.6 * f * t)) * np.exp(-t / 0.05)
            rattle = _filter(noise(n), "bandpass", (p["snare_low"], p["snare_high"]), sr)
            rattle *= np.exp(-t / (p["snare_decay"] * jitter))
            return p["snare_tone"] * tone + (1.0 - p["snare_tone"]) * 3.0 * rattle
        if voice == "rim":
            n = int(sr * 0.08)
            t = np.arange(n) / sr
            return (np.sin(2 * np.pi * 1700 * jitter * t) + 0.6 * np.sin(2 * np.pi * 480 * t)) * np.exp(-t / 0.012) \
                + 0.5 * _filter(noise(n), "highpass", 3000, sr) * np.exp(-t / 0.005)
        if voice == "clap":
            n = int(sr * 0.35)
            t = np.arange(n) / sr
            env = np.zeros(n)
            for k, delay in enumerate((0.0, 0.009, 0.018, 0.027)):
                env += (t >= delay) * np.exp(-np.clip(t - delay, 0, None) / (0.004 if k < 3 else 0.09 * jitter))
            return _filter(noise(n), "bandpass", (900, 3200), sr) * env
        n = int(sr * 0.3)  # brush sweep: soft attack, long noisy tail
        t = np.arange(n) / sr
        env = (1.0 - np.exp(-t / 0.008)) * np.exp(-t / (0.12 * jitter))
        return _filter(noise(n), "bandpass", (1500, 7000), sr) * env
    if voice in ("chat", "ohat", "phat", "ride", "crash", "tamb"):
        decay = {"chat": p["hat_decay"], "ohat": p["ohat_decay"], "phat": 0.02, "ride": p["ride_decay"],
                 "crash": p["crash_decay"], "tamb": 0.15}[voice] * jitter
        n = int(sr * min(decay * 4.0, 3.0))
        t = np.arange(n) / sr
        scale = p["hat_scale"] * (0.8 if voice in ("ride", "crash") else 1.0) * jitter
        x = _metallic(n, sr, scale, rng)
        cutoff = p["hat_hp"] * (0.45 if voice == "ride" else 0.5 if voice == "crash" else 1.0) * p["bright"]
        x = _filter(x, "highpass", cutoff, sr, order=4) * np.exp(-t / decay)
        if voice == "ride":  # the bell of the ride: a few inharmonic partials
            f = 830.0 * scale
            x += 0.25 * sum(np.sin(2 * np.pi * f * r * t) for r in (1.0, 2.68, 5.2)) * np.exp(-t / 0.6)
        if voice == "crash":
            x *= 1.0 - np.exp(-t / 0.004)
        if voice == "tamb":  # jingles: a few fast bursts
            x *= 1.0 + 0.8 * np.sin(2 * np.pi * 38 * t) ** 8
        return x
    if voice == "clave":
        n = int(sr * 0.12)
        t = np.arange(n) / sr
        return np.sin(2 * np.pi * p["clave_f"] * jitter * t) * np.exp(-t / 0.028)
    if voice == "cowbell":
        n = int(sr * 0.5)
        t = np.arange(n) / sr
        s = p["cow_scale"] * jitter
        x = np.sign(np.sin(2 * np.pi * 540 * s * t)) + np.sign(np.sin(2 * np.pi * 800 * s * t))
        x = _filter(x, "bandpass", (600, 3000), sr)
        return x * (0.7 * np.exp(-t / 0.03) + 0.3 * np.exp(-t / 0.2))
    if voice == "shaker":
        n = int(sr * 0.2)
        t = np.arange(n) / sr
        env = (1.0 - np.exp(-t / 0.012)) * np.exp(-t / (p["shaker_decay"] * jitter))
        return _filter(noise(n), "bandpass", (3500, 9500), sr) * env
    raise ValueError(f"unknown drum voice {voice!r}")


# --------------------------------------------------------------------------- grooves
# One bar per pattern string, one character per subdivision step (4 per beat in
# simple meters, 3 in compound ones): X accent, x normal, o soft, g ghost, . rest.
# A string of two bars' length alternates bars (clave).

_Groove = dict[str, str]

_GROOVES: dict[str, dict[str, tuple[_Groove, ...]]] = {
    "rock": {
        "4/4": (
            {"kick": "X.......X.x.....", "snare": "....X.......X...", "chat": "x.o.x.o.x.o.x.o."},
            {"kick": "X.....x.X.......", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.......X.......", "snare": "....X.......X...", "ride": "x.x.x.x.x.x.x.x."},
            {"kick": "X..x....X.x.....", "snare": "....X.......X...", "chat": "xoxoxoxoxoxoxoxo"},
        ),
        "3/4": ({"kick": "X.......x...", "snare": "....X.......", "chat": "x.x.x.x.x.x."},),
        "12/8": ({"kick": "X.....X.....", "snare": "...X.....X..", "chat": "xoox.oxooxoo"},),
    },
    "metal": {
        "4/4": (
            {"kick": "XxXxXxXxXxXxXxXx", "snare": "....X.......X...", "ride": "X...x...X...x..."},
            {"kick": "X.x.X.x.X.x.X.x.", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.....X.X.......", "snare": "........X.......", "crash": "X.......x......."},
        ),
        "12/8": ({"kick": "XxxXxxXxxXxx", "snare": "...X.....X..", "ride": "x..x..x..x.."},),
    },
    "extreme_metal": {
        "4/4": (  # blast beat, double kick under a backbeat, half-time double kick, gallop
            {"kick": "XxXxXxXxXxXxXxXx", "snare": ".x.x.x.x.x.x.x.x", "ride": "x.x.x.x.x.x.x.x."},
            {"kick": "XxXxXxXxXxXxXxXx", "snare": "....X.......X...", "crash": "x...x...x...x..."},
            {"kick": "XxXxXxXxXxXxXxXx", "snare": "........X.......", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.xxX.xxX.xxX.xx", "snare": "....X.......X...", "ride": "x...x...x...x..."},
        ),
        "3/4": ({"kick": "XxXxXxXxXxXx", "snare": "....X...X...", "ride": "x...x...x..."},),
    },
    "breakbeat": {
        "4/4": (  # the kick avoids beats 2-4; the snare's backbeat and the hats keep the grid
            {"kick": "X.X.......XX....", "snare": "....X..x.x..X..x", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X......X..X.....", "snare": "....X.......X...", "chat": "xxxxxxxxxxxxxxxx"},
            {"kick": "..X...X...X..X..", "snare": "....X.......X...", "ohat": "x...x...x...x..."},
            {"kick": "X..X..X...X..X..", "snare": "....X..g.g..X.g.", "chat": "x.xxx.xxx.xxx.xx"},
        ),
    },
    "afro": {
        "4/4": (  # tresillo and bell patterns over a steady pulse
            {"kick": "X..X..X.X..X..X.", "snare": "....x.......x...", "cowbell": "x.x.xx.x.x.xx.x.",
             "shaker": "xoxoxoxoxoxoxoxo"},
            {"kick": "X.....X...X.....", "rim": "..x..x..x..x..x.", "chat": "x.x.x.x.x.x.x.x.",
             "conga_hi": "...x..x....x..xX"},
        ),
        "12/8": ({"kick": "X.....X.....", "cowbell": "x.x.xx.x.x.x", "shaker": "xooxooxooxoo"},),
    },
    "jazz_combo": {
        "4/4": (
            {"brush": "x...x...x...x...", "ride": "x...X.x.x...X.x.", "phat": "....x.......x..."},
            {"ride": "x...X.x.x...X.x.", "phat": "....x.......x...", "snare": "......g.......g."},
        ),
        "3/4": ({"brush": "x...x...x...", "ride": "x...X.x.x...", "phat": "....x...x..."},),
    },
    "electronic": {
        "4/4": (
            {"kick": "X...X...X...X...", "clap": "....X.......X...", "ohat": "..x...x...x...x."},
            {"kick": "X...X...X...X...", "snare": "....X.......X...", "chat": "XoxoXoxoXoxoXoxo"},
            {"kick": "X...X...X...X...", "clap": "....X.......X...", "chat": "..x...x...x...x.",
             "shaker": "xoxoxoxoxoxoxoxo"},
            {"kick": "X......x..X.....", "clap": "........X.......", "chat": "xxxxxxxxxxxxxxxx"},
            {"kick": "X.........X.....", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},
        ),
    },
    "funk": {
        "4/4": (
            {"kick": "X.x.......X..x..", "snare": "....X..g.g..X..g", "chat": "xoxoxoxoxoxoxoxo"},
            {"kick": "X..x..x...X.....", "snare": "....X.g.....X.g.", "chat": "x.x.x.xox.x.x.xo",
             "ohat": "..............x."},
            {"kick": "X.........X.x...", "snare": "g...X..g.g..X...", "chat": "xxxxxxxxxxxxxxxx"},
        ),
    },
    "hiphop": {
        "4/4": (
            {"kick": "X......x..X.....", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X..x......X..x..", "snare": "....X.......X..g", "chat": "x.xxx.x.x.xxx.x."},
            {"kick": "X.......X.x.....", "clap": "....X.......X...", "chat": "xxxxxxxxxxxxxxxx"},
        ),
    },
    "reggae": {
        "4/4": (
            {"kick": "........X.......", "rim": "........X.......", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.......X.......", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X...X...X...X...", "rim": "........X.......", "chat": "..x...x...x...x."},
        ),
    },
    "latin": {
        "4/4": (
            {"clave": "X..X..X.........".ljust(16, ".") + "....X.X.........",
             "conga_hi": "......xX......xX", "conga_lo": "....o.......o...",
             "shaker": "xoxoxoxoxoxoxoxo", "kick": "X..x....X..x...."},
            {"kick": "X..xX..xX..xX..x", "rim": "x..x..x...x..x..", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.......X.......", "cowbell": "x...x...x...x...", "conga_hi": "......xX......x.",
             "shaker": "x.x.x.x.x.x.x.x.", "bongo": "..x...x...x...x."},
        ),
    },
    "jazz": {
        "4/4": (
            {"ride": "x...X.x.x...X.x.", "phat": "....x.......x...", "kick": "g...g...g...g..."},
            {"brush": "x...x...x...x...", "ride": "x...X.x.x...X.x.", "phat": "....x.......x..."},
        ),
        "3/4": ({"ride": "x...X.x.x...", "phat": "....x...x...", "kick": "g..........."},),
    },
    "blues": {
        "12/8": (
            {"kick": "X.....X.....", "snare": "...X.....X..", "chat": "X.xx.xx.xx.x"},
            {"kick": "X..X..X..X..", "snare": "...X.....X..", "ride": "x.xx.xx.xx.x"},
        ),
        "4/4": ({"kick": "X.......X.......", "snare": "....X.......X...", "ride": "x.x.x.x.x.x.x.x."},),
    },
    "country": {
        "4/4": (
            {"kick": "X.......X.......", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.......X.......", "brush": "xoxoXoxoxoxoXoxo"},
        ),
        "3/4": ({"kick": "X...........", "snare": "....x...x...", "chat": "x.x.x.x.x.x."},),
    },
    "waltz": {
        "3/4": (
            {"kick": "X...........", "snare": "....o...o...", "chat": "x...x...x..."},
            {"kick": "X...........", "brush": "x...x...x...", "rim": "....x...x..."},
        ),
    },
    "ballad": {
        "4/4": (
            {"kick": "X.......X.....x.", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.........X.....", "rim": "....x.......x...", "chat": "x.o.x.o.x.o.x.o."},
        ),
        "12/8": ({"kick": "X.....X..X..", "snare": "...X.....X..", "chat": "xooxooxooxoo"},),
        "3/4": ({"kick": "X...........", "rim": "....x...x...", "chat": "x.x.x.x.x.x."},),
    },
    "folk": {
        "6/8": (
            {"kick": "X.....", "snare": "...X..", "chat": "xoxxox"},
            {"kick": "X..X..", "snare": "...X..", "tamb": "xooxoo"},
        ),
        "4/4": ({"kick": "X.......X.......", "snare": "....x.......x...", "tamb": "x.x.x.x.x.x.x.x."},),
    },
    "prog": {
        "5/4": (
            {"kick": "X...........X.......", "snare": "........X.......X...", "chat": "x.x.x.x.x.x.x.x.x.x."},
            {"kick": "X.....x.X.......X...", "snare": "....X.......X.......", "ride": "x.x.x.x.x.x.x.x.x.x."},
        ),
        "7/4": (
            {"kick": "X.......X.......X.......X...", "snare": "....X.......X.......X.......",
             "chat": "x.x.x.x.x.x.x.x.x.x.x.x.x.x."},
        ),
        "4/4": ({"kick": "X..x..x.X.......", "snare": "....X.......X...", "chat": "x.x.x.x.x.x.x.x."},),
    },
}


def _generic_groove(beats_per_bar: int, steps: int) -> _Groove:
    """A plain groove for meters a style has no pattern for: kick on 1 (and mid-bar),
    snare on the other even beats, hats on every subdivision pair."""
    n = beats_per_bar * steps
    kick, snare = ["."] * n, ["."] * n
    kick[0] = "X"
    if beats_per_bar >= 4:
        kick[(beats_per_bar // 2) * steps] = "x"
    for beat in range(1, beats_per_bar, 2):
        snare[beat * steps] = "X"
    hat = "".join("x" if i % 2 == 0 else "." for i in range(n))
    return {"kick": "".join(kick), "snare": "".join(snare), "chat": hat}


# =========================================================================== harmony

_CHORD_TONES = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "m7": (0, 3, 7, 10),
    "5": (0, 7, 12), "sus4": (0, 5, 7), "dim": (0, 3, 6), "m7b5": (0, 3, 6, 10), "add9": (0, 4, 7, 14),
}
# name -> (scale intervals of the key, [(root offset, quality), ...])
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSIONS: dict[str, tuple[tuple[int, ...], tuple[tuple[int, str], ...]]] = {
    "pop": (_MAJOR, ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj"))),
    "pop2": (_MAJOR, ((0, "maj"), (5, "maj"), (7, "maj"), (5, "maj"))),
    "pop3": (_MAJOR, ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj"))),
    "doowop": (_MAJOR, ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj"))),
    "country": (_MAJOR, ((0, "maj"), (0, "maj"), (5, "maj"), (7, "7"))),
    "classical": (_MAJOR, ((0, "maj"), (5, "maj"), (7, "7"), (0, "maj"), (9, "min"), (2, "min"), (7, "7"), (0, "maj"))),
    "lydian": (_MAJOR, ((0, "maj7"), (2, "maj"), (0, "maj7"), (2, "maj"))),
    "minor": (_MINOR, ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj"))),
    "minor2": (_MINOR, ((0, "min"), (5, "min"), (7, "min"), (0, "min"))),
    "andalusian": (_MINOR, ((0, "min"), (10, "maj"), (8, "maj"), (7, "maj"))),
    "phrygian": ((0, 1, 3, 5, 7, 8, 10), ((0, "5"), (1, "5"), (0, "5"), (3, "5"))),
    "metal": (_MINOR, ((0, "5"), (8, "5"), (10, "5"), (7, "5"))),
    "rock": ((0, 2, 4, 5, 7, 9, 10), ((0, "5"), (10, "5"), (5, "5"), (0, "5"))),
    "mixolydian": ((0, 2, 4, 5, 7, 9, 10), ((0, "maj"), (10, "maj"), (5, "maj"), (0, "maj"))),
    "dorian": ((0, 2, 3, 5, 7, 9, 10), ((0, "m7"), (5, "7"))),
    "funk": ((0, 2, 3, 5, 7, 9, 10), ((0, "7"), (0, "7"), (5, "7"), (0, "7"))),
    "one_chord": (_MINOR, ((0, "m7"),)),
    "jazz251": (_MAJOR, ((2, "m7"), (7, "7"), (0, "maj7"), (9, "7"))),
    "jazz_minor": (_MINOR, ((2, "m7b5"), (7, "7"), (0, "m7"), (0, "m7"))),
    "blues": ((0, 3, 5, 6, 7, 10), ((0, "7"),) * 4 + ((5, "7"),) * 2 + ((0, "7"),) * 2
              + ((7, "7"), (5, "7"), (0, "7"), (7, "7"))),
}


@dataclass
class _Harmony:
    """Key, scale and a looping chord progression; chords change every ``chord_beats``."""

    key_pc: int
    scale: tuple[int, ...]
    chords: tuple[tuple[int, str], ...]
    chord_beats: float
    voicings: list[list[int]]

    def index_at(self, pos: float) -> int:
        return int(math.floor(pos / self.chord_beats + 1e-9)) % len(self.chords)

    def root_at(self, pos: float) -> int:
        """Pitch class of the chord root at beat position ``pos``."""
        return (self.key_pc + self.chords[self.index_at(pos)][0]) % 12

    def tones_at(self, pos: float) -> tuple[int, ...]:
        return _CHORD_TONES[self.chords[self.index_at(pos)][1]]

    def voicing_at(self, pos: float) -> list[int]:
        return self.voicings[self.index_at(pos)]

    def next_root(self, pos: float) -> int:
        """Pitch class of the root of the chord after the one at ``pos``."""
        nxt = (self.index_at(pos) + 1) % len(self.chords)
        return (self.key_pc + self.chords[nxt][0]) % 12


def _make_harmony(style: _Style, beats_per_bar: int, rng: np.random.Generator) -> _Harmony:
    scale, chords = _PROGRESSIONS[_choice(rng, style.progressions)]
    bars = float(_choice(rng, style.chord_bars))
    if bars < 1.0 and beats_per_bar % 2:
        bars = 1.0
    if chords == _PROGRESSIONS["blues"][1]:
        bars = 1.0
    key_pc = int(rng.integers(12))
    # voice leading: each chord takes the inversion whose mean pitch is nearest a
    # slowly moving centre, so the comping stays in one register
    voicings: list[list[int]] = []
    centre = float(rng.uniform(58, 66))
    for root, quality in chords:
        close = [48 + (key_pc + root) % 12 + i for i in _CHORD_TONES[quality]]
        candidates = []
        for k in range(len(close)):
            inversion = close[k:] + [m + 12 for m in close[:k]]
            shift = 12 * round((centre - float(np.mean(inversion))) / 12)
            candidates.append([m + shift for m in inversion])
        best = min(candidates, key=lambda v: abs(float(np.mean(v)) - centre))
        voicings.append(best)
        centre = 0.7 * centre + 0.3 * float(np.mean(best))
    return _Harmony(key_pc, scale, chords, bars * beats_per_bar, voicings)


# =========================================================================== instruments


@dataclass
class _Instrument:
    """A pitched instrument with per-track timbre parameters; notes are cached."""

    kind: str
    model: str
    params: dict[str, float]
    sr: int
    rng: np.random.Generator
    cache: dict[tuple, np.ndarray] = field(default_factory=dict)

    def _string(self, midi: int, duration_s: float) -> np.ndarray:
        """One undistorted note of unit peak, ``duration_s`` rounded to 10 ms (cached)."""
        duration_s = max(round(duration_s, 2), 0.03)
        key = (midi, duration_s)
        if key not in self.cache:
            x = _RENDERERS[self.model](_midi_hz(midi), duration_s, self.params, self.sr, self.rng)
            self.cache[key] = _fade_edges(x / (np.max(np.abs(x)) + 1e-12), self.sr, 0.0005, 0.01)
        return self.cache[key]

    def _amp(self, x: np.ndarray) -> np.ndarray:
        """Distortion and cabinet for driven guitars (on the whole chord, not per string)."""
        drive = self.params.get("drive", 0.0)
        if drive <= 0.0:
            return x
        x = np.tanh(drive * x / (np.max(np.abs(x)) + 1e-12))
        x = _filter(_filter(x, "lowpass", self.params["cabinet_hz"], self.sr, 4), "highpass", 90, self.sr)
        return x / (np.max(np.abs(x)) + 1e-12)

    def note(self, midi: int, duration_s: float) -> np.ndarray:
        """One note of unit peak: ``duration_s`` until note-off, plus its release."""
        return self.chord((midi,), duration_s, 0.0)

    def chord(self, midis: Sequence[int], duration_s: float, spread_s: float) -> np.ndarray:
        """The notes of a chord in the given order, started ``spread_s`` apart (a strum)."""
        key = ("chord", tuple(midis), round(duration_s, 2), round(spread_s, 3))
        if key in self.cache:
            return self.cache[key]
        offsets = [int(i * spread_s * self.sr) for i in range(len(midis))]
        notes = [self._string(m, duration_s) for m in midis]
        out = np.zeros(max(o + len(n) for o, n in zip(offsets, notes)))
        for o, n in zip(offsets, notes):
            out[o:o + len(n)] += n
        out = self._amp(out)
        out /= np.max(np.abs(out)) + 1e-12
        self.cache[key] = out
        return out


def _note_length(duration_s: float, release_s: float, cap_s: float = 6.0) -> float:
    return min(duration_s + release_s, cap_s)


def _render_additive(f: float, dur: float, p: dict, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Piano, organ and accordion: two wavetables (bright attack, darker body), with a
    two-stage decay (piano) or sustain (organ, accordion), detuned pair for chorus."""
    sustain = p["sustain"]
    tau = p["tau"] * (261.6 / f) ** p["tau_pitch"] if not sustain else 1e9
    n = int(sr * (_note_length(dur, p["release"]) if sustain else min(dur + p["release"], 5.0 * tau, 5.0)))
    n = max(n, int(0.03 * sr))
    t = np.arange(n) / sr
    n_harm = max(1, min(p["n_harm"], int(0.45 * sr / f)))
    k = np.arange(1, n_harm + 1)
    comb = np.abs(np.sin(np.pi * k * p["strike"])) + 0.05 if p["strike"] > 0 else np.ones(n_harm)
    bright = _wavetable(k ** -p["tilt_bright"] * comb * p["drawbars"][:n_harm])
    dark = _wavetable(k ** -p["tilt_dark"] * comb * p["drawbars"][:n_harm])
    phase = f * t + rng.uniform()
    phase2 = f * (1.0 + p["detune"]) * t
    body = _lookup(dark, phase) + _lookup(dark, phase2)
    attack = _lookup(bright, phase)
    if sustain:
        env = np.minimum(t / p["attack"], 1.0)
        if p.get("tremolo", 0.0) > 0:
            env = env * (1.0 - p["tremolo"] * (0.5 + 0.5 * np.sin(2 * np.pi * p["tremolo_hz"] * t)))
        x = env * (body + p["bright_mix"] * attack * np.exp(-t / 0.08))
    else:
        env = p["fast_mix"] * np.exp(-t / (tau * 0.15)) + (1.0 - p["fast_mix"]) * np.exp(-t / tau)
        x = env * body + p["bright_mix"] * np.exp(-t / (tau * 0.06)) * attack
        x[: int(0.004 * sr)] *= np.linspace(0.3, 1.0, int(0.004 * sr))
    off = t > dur
    x[off] *= np.exp(-(t[off] - dur) / p["release"] * 3.0)
    thump = p["thump"] * _filter(rng.standard_normal(n), "lowpass", 2500, sr) * np.exp(-t / 0.006)
    return x + thump


def _render_fm(f: float, dur: float, p: dict, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Two-operator FM: electric piano (ratio 1), bells (non-integer ratios)."""
    tau = p["tau"] * (261.6 / f) ** 0.4
    n = max(int(sr * min(dur + p["release"], 5.0 * tau, 6.0)), int(0.03 * sr))
    t = np.arange(n) / sr
    index = p["index"] * np.exp(-t / p["index_tau"])
    x = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * p["ratio"] * t))
    x *= 0.7 * np.exp(-t / tau) + 0.3 * np.exp(-t / (tau * 3.0))
    x += p["tine"] * np.sin(2 * np.pi * f * 7.0 * t) * np.exp(-t / 0.02) if 7.0 * f < 0.45 * sr else 0.0
    off = t > dur
    x[off] *= np.exp(-(t[off] - dur) / p["release"] * 3.0)
    return x


def _render_mallet(f: float, dur: float, p: dict, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Marimba, vibraphone, glockenspiel: a few inharmonic partials decaying fast."""
    tau = p["tau"] * (261.6 / f) ** 0.5
    n = max(int(sr * min(4.0 * tau + 0.05, 4.0)), int(0.03 * sr))
    t = np.arange(n) / sr
    x = np.zeros(n)
    for k, (ratio, amp) in enumerate(zip(p["ratios"], p["amps"])):
        if f * ratio < 0.45 * sr:
            x += amp * np.sin(2 * np.pi * f * ratio * t) * np.exp(-t * (1.0 + 2.5 * k) / tau)
    if p.get("tremolo", 0.0) > 0:
        x *= 1.0 - p["tremolo"] * (0.5 + 0.5 * np.sin(2 * np.pi * 5.5 * t))
    return x


def _render_pluck(f: float, dur: float, p: dict, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong string: a noise burst circulating in a damped delay line."""
    period = max(2, int(round(sr / f - 0.5)))  # the averaging filter adds half a sample
    n = max(int(sr * min(dur + p["release"], p["max_s"])), int(0.03 * sr))
    excitation = rng.uniform(-1.0, 1.0, period)
    if p["brightness"] < 1.0:  # darker pluck: a one-pole low-pass on the burst
        a = 0.9 * (1.0 - p["brightness"])
        excitation = signal.lfilter([1.0 - a], [1.0, -a], excitation)
    pick = int(period * p["pick"])
    if pick > 0:
        excitation = excitation - np.roll(excitation, pick)
    gain = p["damping"] ** (f / 220.0) ** 0.3  # high strings lose energy per period faster
    total = n + 1
    buf = np.zeros(total + period)
    buf[1:period + 1] = excitation
    if period < 48:
        a = np.zeros(period + 2)
        a[0], a[period], a[period + 1] = 1.0, -0.5 * gain, -0.5 * gain
        drive = np.zeros(total)
        drive[1:period + 1] = excitation
        buf = signal.lfilter([1.0], a, drive)
    else:
        start = period + 1
        while start < total:
            stop = min(start + period, total)
            delayed = buf[start - period:stop - period]
            buf[start:stop] = 0.5 * gain * (delayed + buf[start - period - 1:stop - period - 1])
            start = stop
    x = buf[1:n + 1]
    if p["lowpass"] < 0.45 * sr:
        x = _filter(x, "lowpass", p["lowpass"], sr)
    t = np.arange(n) / sr
    off = t > dur
    x[off] *= np.exp(-(t[off] - dur) / max(p["release"], 1e-3) * 3.0)
    return x


def _render_subtractive(f: float, dur: float, p: dict, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Detuned saw / square voices through a low-pass whose cutoff follows an envelope;
    ADSR amplitude; optional vibrato and breath noise (strings, pads, brass, leads, bass)."""
    n = max(int(sr * _note_length(dur, p["release"])), int(0.03 * sr))
    t = np.arange(n) / sr
    vib = p["vibrato"] * np.sin(2 * np.pi * p["vibrato_hz"] * t) * np.clip(t / 0.3 - 0.3, 0, 1)
    x = np.zeros(n)
    for cents in p["detune"]:
        fv = f * 2.0 ** (cents / 1200.0)
        phase = fv * t + fv * np.cumsum(vib) / sr + rng.uniform()
        if p["wave"] == "square":
            x += _saw(phase, fv / sr) - _saw(phase + 0.5, fv / sr)
        elif p["wave"] == "sine":
            x += np.sin(2 * np.pi * phase) + p.get("h2", 0.0) * np.sin(4 * np.pi * phase)
        else:
            x += _saw(phase, fv / sr)
    if p.get("breath", 0.0) > 0:
        x += p["breath"] * _filter(rng.standard_normal(n), "bandpass", (f * 0.8, f * 4.0), sr)
    if p["wave"] != "sine":
        lo = _filter(x, "lowpass", min(f * p["cut_lo"], 0.45 * sr), sr)
        hi = _filter(x, "lowpass", min(f * p["cut_hi"], 0.45 * sr), sr)
        fenv = (1.0 - np.exp(-t / p["f_attack"])) * (p["f_sustain"] + (1 - p["f_sustain"]) * np.exp(-t / p["f_decay"]))
        x = lo + fenv * (hi - lo)
    attack, decay, sustain = p["attack"], p["decay"], p["sustain"]
    env = np.where(t < attack, t / attack, sustain + (1.0 - sustain) * np.exp(-(t - attack) / decay))
    off = t > dur
    env[off] *= np.exp(-(t[off] - dur) / p["release"] * 3.0)
    if p.get("glide", 0.0) > 0:  # 808-style pitch drop: re-render as a sine sweep
        freq = f * (1.0 + p["glide"] * np.exp(-t / 0.04))
        x = np.tanh(1.5 * np.sin(2 * np.pi * np.cumsum(freq) / sr))
    return x * env


# vowel -> formant frequencies (Hz) and relative gains, for an adult voice
_VOWELS = {
    "a": ((800, 1150, 2900), (1.0, 0.5, 0.12)),
    "e": ((400, 2000, 2700), (1.0, 0.35, 0.15)),
    "i": ((300, 2300, 3000), (1.0, 0.25, 0.15)),
    "o": ((450, 800, 2830), (1.0, 0.6, 0.08)),
    "u": ((325, 700, 2530), (1.0, 0.3, 0.05)),
}


def _render_vocal(f: float, dur: float, p: dict, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sung vowel: a glottal (sawtooth) source with a scoop into the pitch, delayed
    vibrato and breath noise, shaped by three formant band-passes."""
    n = max(int(sr * _note_length(dur, p["release"])), int(0.03 * sr))
    t = np.arange(n) / sr
    semitones = -p["scoop"] * np.exp(-t / 0.05) + p["vibrato"] * np.sin(2 * np.pi * p["vibrato_hz"] * t) * np.clip(
        (t - 0.12) / 0.25, 0.0, 1.0)
    freq = f * 2.0 ** (semitones / 12.0)
    source = _saw(np.cumsum(freq) / sr + rng.uniform(), f / sr)
    source += p["breath"] * rng.standard_normal(n)
    formants, gains = _VOWELS[_choice(rng, tuple(_VOWELS))]
    x = np.zeros(n)
    for centre, gain in zip(formants, gains):
        centre *= p["formant_shift"]
        if centre < 0.45 * sr:
            x += gain * _filter(source, "bandpass", (centre / 1.15, centre * 1.15), sr, order=1)
    env = np.minimum(t / p["attack"], 1.0) * (0.85 + 0.15 * np.exp(-t / 0.3))
    off = t > dur
    env[off] *= np.exp(-(t[off] - dur) / p["release"] * 3.0)
    return x * env


_RENDERERS: dict[str, Callable[..., np.ndarray]] = {
    "vocal": _render_vocal,
    "additive": _render_additive,
    "fm": _render_fm,
    "mallet": _render_mallet,
    "pluck": _render_pluck,
    "subtractive": _render_subtractive,
}


def _make_instrument(kind: str, sr: int, rng: np.random.Generator) -> _Instrument:
    """Sample the timbre of one instrument ``kind`` (piano, epiano, organ, ... bass_808)."""
    u = rng.uniform
    ones = np.ones(32)

    def additive(**kw) -> dict:
        base = dict(sustain=False, tau=u(0.9, 2.0), tau_pitch=u(0.4, 0.7), release=u(0.08, 0.2), n_harm=14,
                    strike=u(0.1, 0.16), tilt_bright=u(0.5, 0.9), tilt_dark=u(1.6, 2.4), drawbars=ones,
                    detune=u(0.0005, 0.002), fast_mix=u(0.4, 0.7), bright_mix=u(0.3, 0.7), attack=0.005,
                    thump=u(0.02, 0.1))
        base.update(kw)
        return base

    def subtractive(**kw) -> dict:
        base = dict(wave="saw", detune=(0.0,), vibrato=0.0, vibrato_hz=5.5, cut_lo=2.0, cut_hi=8.0,
                    f_attack=0.001, f_decay=0.2, f_sustain=0.2, attack=0.005, decay=0.3, sustain=0.7,
                    release=0.1)
        base.update(kw)
        return base

    def pluck(**kw) -> dict:
        base = dict(damping=u(0.994, 0.999), brightness=u(0.5, 1.0), pick=u(0.1, 0.3), lowpass=u(3000, 8000),
                    release=u(0.05, 0.15), max_s=2.5)
        base.update(kw)
        return base

    if kind == "piano":
        model, params = "additive", additive()
    elif kind == "organ":
        bars = np.zeros(32)
        for h, w in zip((1, 2, 3, 4, 6, 8), rng.uniform(0.0, 1.0, 6)):
            bars[h - 1] = w
        bars[0] = max(bars[0], 0.6)
        model, params = "additive", additive(sustain=True, drawbars=bars, tilt_bright=0.0, tilt_dark=0.3,
                                             strike=0.0, attack=0.004, release=0.04, bright_mix=u(0.2, 0.6),
                                             tremolo=_choice(rng, (0.0, u(0.1, 0.3))), tremolo_hz=u(5, 7),
                                             thump=u(0.05, 0.15), detune=u(0.0005, 0.003))
    elif kind == "accordion":
        model, params = "additive", additive(sustain=True, tilt_bright=0.6, tilt_dark=1.0, strike=0.0,
                                             attack=u(0.02, 0.05), release=0.06, detune=u(0.003, 0.006),
                                             bright_mix=0.3, thump=0.02, tremolo=0.0)
    elif kind == "epiano":
        model, params = "fm", dict(ratio=1.0, index=u(1.0, 3.0), index_tau=u(0.1, 0.4), tau=u(0.8, 1.8),
                                   release=u(0.1, 0.3), tine=u(0.1, 0.4))
    elif kind == "clav":
        model, params = "pluck", pluck(damping=u(0.985, 0.993), brightness=1.0, pick=u(0.05, 0.12),
                                       lowpass=u(4000, 7000), release=0.03, max_s=0.8)
    elif kind == "bell":
        model, params = "fm", dict(ratio=_choice(rng, (3.5, 2.76, 4.2, 1.4)), index=u(1.5, 4.0), index_tau=u(0.3, 1.2),
                                   tau=u(1.0, 2.5), release=u(0.5, 1.0), tine=0.0)
    elif kind == "mallet":
        marimba = rng.uniform() < 0.5
        model, params = "mallet", dict(tau=u(0.3, 0.6) if marimba else u(0.8, 1.6),
                                       ratios=(1.0, 3.93, 9.6) if marimba else (1.0, 4.0, 10.0),
                                       amps=(1.0, u(0.2, 0.5), u(0.05, 0.2)),
                                       tremolo=0.0 if marimba else _choice(rng, (0.0, u(0.2, 0.5))))
    elif kind in ("pluck", "clean_guitar", "nylon", "harp", "dist_guitar", "dist_lead"):
        extra = {
            "pluck": dict(),
            "clean_guitar": dict(lowpass=u(3500, 7000)),
            "nylon": dict(brightness=u(0.3, 0.6), lowpass=u(2500, 4500), damping=u(0.993, 0.997)),
            "harp": dict(brightness=u(0.5, 0.8), lowpass=u(3000, 6000), damping=u(0.997, 0.999), max_s=3.0),
            "dist_guitar": dict(brightness=1.0, damping=u(0.997, 0.999), drive=u(4.0, 12.0),
                                cabinet_hz=u(2800, 4800), release=u(0.03, 0.08)),
            "dist_lead": dict(brightness=1.0, damping=u(0.998, 0.9995), drive=u(3.0, 8.0),
                              cabinet_hz=u(3000, 5000)),
        }[kind]
        model, params = "pluck", pluck(**extra)
    elif kind in ("strings", "cello", "fiddle"):
        model, params = "subtractive", subtractive(
            detune=(-7.0, 0.0, 6.0) if kind == "strings" else (0.0, 3.0), vibrato=u(0.002, 0.005),
            cut_lo=u(2.0, 4.0), cut_hi=u(5.0, 9.0), f_attack=u(0.03, 0.1), f_decay=0.5, f_sustain=0.6,
            attack=u(0.015, 0.06) if kind != "strings" else u(0.03, 0.12), decay=0.4, sustain=0.8,
            release=u(0.1, 0.3), breath=u(0.0, 0.1))
    elif kind in ("pad", "pad_pluck"):
        slow = kind == "pad"
        model, params = "subtractive", subtractive(
            wave=_choice(rng, ("saw", "square")), detune=(-12.0, -4.0, 5.0, 11.0) if slow else (-6.0, 6.0),
            cut_lo=u(1.5, 3.0), cut_hi=u(4.0, 10.0), f_attack=u(0.2, 0.8) if slow else 0.001,
            f_decay=u(0.5, 2.0) if slow else u(0.08, 0.3), f_sustain=0.5 if slow else 0.1,
            attack=u(0.2, 1.0) if slow else 0.003, decay=1.0 if slow else u(0.2, 0.5),
            sustain=0.8 if slow else u(0.0, 0.3), release=u(0.4, 1.2) if slow else u(0.1, 0.3))
    elif kind in ("synth_lead", "synth_square", "synth_pluck", "synth_stab", "brass"):
        params = {
            "synth_lead": dict(detune=(-5.0, 5.0), vibrato=u(0.0, 0.004), cut_lo=u(2, 4), cut_hi=u(6, 14),
                               f_decay=u(0.1, 0.4), attack=u(0.003, 0.02), release=u(0.05, 0.2)),
            "synth_square": dict(wave="square", cut_lo=u(2, 3), cut_hi=u(5, 10), f_decay=u(0.1, 0.3),
                                 release=u(0.05, 0.15)),
            "synth_pluck": dict(wave=_choice(rng, ("saw", "square")), cut_lo=1.0, cut_hi=u(8, 16),
                                f_decay=u(0.04, 0.15), f_sustain=0.0, decay=u(0.15, 0.4), sustain=0.0,
                                release=0.08),
            "synth_stab": dict(detune=(-10.0, 0.0, 10.0), cut_lo=u(1.5, 3), cut_hi=u(6, 12), f_decay=u(0.05, 0.2),
                               f_sustain=0.1, decay=u(0.1, 0.3), sustain=u(0.2, 0.5), release=0.06),
            "brass": dict(detune=(-4.0, 4.0), vibrato=u(0.001, 0.004), cut_lo=1.5, cut_hi=u(5, 9),
                          f_attack=u(0.02, 0.06), f_decay=0.3, f_sustain=0.6, attack=u(0.01, 0.03),
                          decay=0.3, sustain=0.75, release=u(0.05, 0.12)),
        }[kind]
        model, params = "subtractive", subtractive(**params)
    elif kind in ("vocal", "choir"):
        choir = kind == "choir"
        model, params = "vocal", dict(scoop=0.0 if choir else u(0.2, 1.2), vibrato=u(0.1, 0.5),
                                      vibrato_hz=u(4.8, 6.5), breath=u(0.05, 0.3),
                                      formant_shift=u(0.9, 1.2), attack=u(0.2, 0.6) if choir else u(0.02, 0.08),
                                      release=u(0.3, 0.8) if choir else u(0.06, 0.2))
    elif kind == "flute":
        model, params = "subtractive", subtractive(wave="sine", h2=u(0.05, 0.3), vibrato=u(0.002, 0.006),
                                                   attack=u(0.02, 0.06), decay=0.3, sustain=0.85,
                                                   release=u(0.05, 0.15), breath=u(0.05, 0.2))
    elif kind in ("bass_finger", "bass_pick", "bass_upright"):
        extra = {
            "bass_finger": dict(brightness=u(0.3, 0.7), lowpass=u(900, 2000), damping=u(0.995, 0.998)),
            "bass_pick": dict(brightness=u(0.7, 1.0), lowpass=u(1800, 3500), damping=u(0.996, 0.999)),
            "bass_upright": dict(brightness=u(0.2, 0.5), lowpass=u(600, 1200), damping=u(0.988, 0.994),
                                 release=u(0.04, 0.1)),
        }[kind]
        model, params = "pluck", pluck(pick=u(0.15, 0.3), max_s=2.0, **extra)
    elif kind in ("bass_synth", "bass_sub", "bass_808", "tuba"):
        params = {
            "bass_synth": dict(wave=_choice(rng, ("saw", "square")), detune=(0.0,), cut_lo=u(1.0, 2.0),
                               cut_hi=u(4.0, 10.0), f_decay=u(0.05, 0.25), f_sustain=0.1, decay=0.3,
                               sustain=u(0.4, 0.8), release=0.05),
            "bass_sub": dict(wave="sine", h2=u(0.05, 0.3), attack=0.004, decay=0.4, sustain=u(0.5, 0.9),
                             release=0.06),
            "bass_808": dict(wave="sine", attack=0.002, decay=u(0.4, 1.0), sustain=u(0.1, 0.4),
                             release=0.1, glide=u(0.3, 1.0)),
            "tuba": dict(cut_lo=1.0, cut_hi=u(3.0, 5.0), f_attack=0.03, f_decay=0.2, f_sustain=0.3,
                         attack=0.03, decay=0.2, sustain=0.6, release=0.08, vibrato=0.002),
        }[kind]
        model, params = "subtractive", subtractive(**params)
    else:
        raise ValueError(f"unknown instrument kind {kind!r}")
    return _Instrument(kind=kind, model=model, params=params, sr=sr, rng=rng)


# =========================================================================== timing


@dataclass
class _Timeline:
    """The metrical grid: beat index -> time, the meter, swing and the annotated span."""

    beats_per_bar: int
    steps_per_beat: int
    beat_index: np.ndarray  # consecutive integer beats; beat 0 is a downbeat
    beat_times: np.ndarray  # seconds, one per beat index
    first_beat: int  # first annotated beat
    music_from: float  # events before this beat position are not played
    swing_ratio: float
    swing_unit: float

    @property
    def pickup(self) -> bool:
        """Whether the music starts with an anacrusis (annotated beats before beat 0)."""
        return self.music_from == self.first_beat < 0

    def start(self, part: str) -> float:
        """Beat position from which ``part`` plays: drums and comping also play the
        pickup beats of an anacrusis, the other parts enter on the first downbeat."""
        if self.pickup and part not in ("drums", "comp"):
            return 0.0
        return self.music_from

    def time(self, pos: np.ndarray | float) -> np.ndarray:
        """Seconds at beat position(s) ``pos`` after swing (linear within each beat)."""
        pos = np.asarray(pos, dtype=np.float64)
        if self.swing_ratio != 0.5:
            unit = self.swing_unit
            base = np.floor(pos / unit + 1e-9) * unit
            u = np.clip((pos - base) / unit, 0.0, 1.0)
            r = self.swing_ratio
            pos = base + unit * np.where(u < 0.5, 2.0 * r * u, r + (u - 0.5) * 2.0 * (1.0 - r))
        return np.interp(pos, self.beat_index, self.beat_times)


def _bpm_curve(kind: str, bpm: float, beats: np.ndarray, n_track_beats: float, beats_per_bar: int,
               rng: np.random.Generator) -> np.ndarray:
    """Tempo (bpm) of the interval after each beat index in ``beats`` for a tempo
    ``kind``: change (at a bar line), rubato (free), drift (a ramp or a slow wave)."""
    if kind == "change":
        bar = int(rng.uniform(0.3, 0.65) * n_track_beats / beats_per_bar)
        ratio = _choice(rng, (rng.uniform(0.75, 0.9), rng.uniform(1.1, 1.3)))
        curve = np.where(beats < bar * beats_per_bar, bpm, bpm * ratio)
    elif kind == "rubato":
        curve = np.zeros(len(beats))
        for _ in range(3):
            period = rng.uniform(6, 40)
            curve += rng.uniform(0.015, 0.045) * np.sin(2 * np.pi * beats / period + rng.uniform(0, 2 * np.pi))
        curve = bpm * np.exp(curve)
    elif kind == "drift":
        if rng.uniform() < 0.5:  # a ramp (rushing or dragging) between 10 % and 90 % of the track
            amount = rng.uniform(0.04, 0.12) * _choice(rng, (-1.0, 1.0))
            ramp = np.clip((beats - 0.1 * n_track_beats) / (0.8 * n_track_beats), 0.0, 1.0)
            curve = bpm * np.exp(amount * ramp)
        else:  # a slow wave
            amount = rng.uniform(0.02, 0.06)
            curve = bpm * np.exp(amount * np.sin(2 * np.pi * beats / rng.uniform(16, 64) + rng.uniform(0, 6.3)))
    else:
        curve = np.full(len(beats), bpm)
    return np.clip(curve, BPM_MIN, BPM_MAX)


def _make_timeline(style: _Style, meter: str, duration_s: float, rng: np.random.Generator
                   ) -> tuple[_Timeline, float | None, str, str]:
    """Tempo, tempo curve, intro and swing -> the grid; returns (timeline, bpm, tempo kind, intro)."""
    beats_per_bar, steps = _METERS[meter]
    lo, hi = style.bpm_range
    bpm = round(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), 2)
    r = rng.uniform()
    if r < style.drift:
        kind = "rubato" if style.rubato else "drift"
    elif r < style.drift + style.change:
        kind = "change"
    else:
        kind = "constant"
    ibi = 60.0 / bpm
    bar_s = beats_per_bar * ibi
    intro = _choice(rng, ("none", "pickup", "excerpt", "silence", "beatless"), (0.3, 0.12, 0.3, 0.1, 0.18))
    limit = 0.25 * duration_s  # intros never take more than a quarter of the track
    if intro == "excerpt":  # the grid started before the excerpt: beat 0 lies before 0 s
        anchor_time, anchor_beat = -rng.uniform(0.0, 4.0 * bar_s), 0
    else:
        pickup = int(rng.integers(1, beats_per_bar)) if intro == "pickup" and beats_per_bar > 1 else 0
        start = {"none": rng.uniform(0.0, 0.3), "pickup": rng.uniform(0.0, 0.3),
                 "silence": rng.uniform(0.4, 2.5), "beatless": rng.uniform(2.0, 7.0)}[intro]
        anchor_time, anchor_beat = min(start, limit), -pickup
    # integer beats covering [min(anchor, -3 s), duration] and two bars more, at the fastest tempo
    before = int(math.ceil(max(anchor_time + 3.0, 0.0) / (60.0 / BPM_MAX))) + 2 * beats_per_bar
    after = int(math.ceil((duration_s - anchor_time) / (60.0 / BPM_MAX))) + 2 * beats_per_bar
    beats = np.arange(anchor_beat - before, anchor_beat + after + 1)
    if kind == "constant":
        times = anchor_time + (beats - anchor_beat) * ibi
        track_bpm: float | None = bpm
    else:
        n_track_beats = duration_s / ibi
        curve = _bpm_curve(kind, bpm, beats.astype(np.float64), n_track_beats, beats_per_bar, rng)
        intervals = 60.0 / curve
        cum = np.concatenate([[0.0], np.cumsum(intervals[:-1])])
        times = anchor_time + cum - cum[before]
        track_bpm = None
    swing = 0.5
    if steps == 4 and rng.uniform() < style.swing[0]:
        swing = rng.uniform(style.swing[1], style.swing[2])
    if intro == "excerpt":
        first_beat = int(beats[np.searchsorted(times, 0.0)])
        music_from = float(beats[0])
    else:
        first_beat = anchor_beat
        music_from = float(anchor_beat)
    timeline = _Timeline(beats_per_bar, steps, beats, times, first_beat, music_from, swing, style.swing_unit)
    return timeline, track_bpm, kind, intro


# =========================================================================== composition

# An event: (beat position, duration in beats, payload, velocity 0..1)
_Event = tuple[float, float, object, float]


@dataclass
class _Part:
    """One instrument line: its events, how it is played and how it is mixed."""

    name: str  # drums | bass | comp | arp | pad | lead
    instrument: _Instrument | _Kit
    events: list[_Event]
    level_db: float
    send: float  # reverb send
    offset_s: float  # systematic micro-timing (laid back > 0)
    jitter_s: float  # random micro-timing (std)
    strum_s: float = 0.0
    eq: tuple[float, float] = (30.0, 11000.0)  # high-pass, low-pass (Hz)


@dataclass
class _Arrangement:
    """Which parts play in which section, and how loud (per section dB)."""

    section_bars: int
    active: dict[tuple[str, int], bool]
    gain_db: dict[int, float]

    def plays(self, part: str, pos: float, beats_per_bar: int) -> bool:
        return self.active.get((part, self.section(pos, beats_per_bar)), True)

    def section(self, pos: float, beats_per_bar: int) -> int:
        return int(math.floor(math.floor(pos / beats_per_bar + 1e-9) / self.section_bars))

    def gain(self, pos: float, beats_per_bar: int) -> float:
        return _db(self.gain_db.get(self.section(pos, beats_per_bar), 0.0))


def _make_arrangement(parts: Sequence[str], timeline: _Timeline, duration_s: float,
                      rng: np.random.Generator) -> _Arrangement:
    """Sections of 4 or 8 bars: a sparse first section sometimes, a breakdown without
    drums sometimes (never the first section that sounds), a lead that comes and goes;
    every section keeps a beat-carrying part."""
    bpb = timeline.beats_per_bar
    section_bars = int(_choice(rng, (4, 8), (0.5, 0.5)))
    arrangement = _Arrangement(section_bars, {}, {})
    first = arrangement.section(max(timeline.first_beat, 0), bpb)
    last = arrangement.section(_bars(timeline, duration_s).stop * bpb - 1, bpb)
    carriers = [p for p in ("drums", "comp", "arp", "bass") if p in parts]
    active: dict[tuple[str, int], bool] = {}
    gain_db: dict[int, float] = {}
    sparse_intro = rng.uniform() < 0.3
    breakdown = int(rng.integers(first + 1, last + 1)) if rng.uniform() < 0.3 and last > first else None
    crescendo = rng.uniform() < 0.2
    for s in range(first - 1, last + 1):
        gain_db[s] = rng.uniform(-3.0, 2.0) + (3.0 * (s - last) / max(last - first, 1) if crescendo else 0.0)
        for part in parts:
            on = True
            if part == "lead":
                on = rng.uniform() < 0.6
            elif part in ("arp", "pad"):
                on = rng.uniform() < 0.8
            if s <= first and sparse_intro and part != carriers[0]:
                on = part in ("pad",) or rng.uniform() < 0.25
            if s == breakdown and part == "drums":
                on = False
            active[(part, s)] = on
        if not any(active[(p, s)] for p in carriers):
            fallback = [p for p in carriers if p != "drums"] or carriers
            active[(fallback[0], s)] = True
    arrangement.active, arrangement.gain_db = active, gain_db
    return arrangement


def _bars(timeline: _Timeline, duration_s: float) -> range:
    """Bar indices that can sound in the track (from where music starts to the end)."""
    bpb = timeline.beats_per_bar
    last_beat = int(timeline.beat_index[np.searchsorted(timeline.beat_times, duration_s) - 1])
    return range(math.floor(timeline.music_from / bpb), last_beat // bpb + 1)


def _steps(pattern: str, steps: int) -> list[tuple[float, float]]:
    """(position in beats, velocity) for each hit of a pattern string."""
    return [(i / steps, _VELOCITY[c]) for i, c in enumerate(pattern) if c in _VELOCITY]


def _compose_drums(style: _Style, meter: str, timeline: _Timeline, arrangement: _Arrangement,
                   duration_s: float, rng: np.random.Generator) -> list[_Event]:
    bpb, steps = timeline.beats_per_bar, timeline.steps_per_beat
    grooves = _GROOVES.get(style.name, {}).get(meter) or (_generic_groove(bpb, steps),)
    main = _choice(rng, grooves)
    alt = _choice(rng, grooves)
    if "chat" in main and rng.uniform() < 0.15:  # ride instead of hats
        main = {("ride" if k == "chat" else k): v for k, v in main.items()}
    fill_prob = rng.uniform(0.2, 0.7)
    crash_prob = rng.uniform(0.3, 0.9)
    ghost_prob = rng.uniform(0.0, 0.15) if style.name in ("funk", "hiphop", "rock", "jazz", "blues") else 0.0
    n_step = bpb * steps
    events: list[_Event] = []
    for bar in _bars(timeline, duration_s):
        start = bar * bpb
        if timeline.pickup and bar < 0:
            continue  # the pickup beats get a fill (below), not the groove
        groove = alt if rng.uniform() < 0.15 else main
        section_bar = bar % arrangement.section_bars
        fill = section_bar == arrangement.section_bars - 1 and rng.uniform() < fill_prob
        fill_from = (bpb - (1 if rng.uniform() < 0.6 or bpb < 3 else 2)) if fill else bpb
        for voice, pattern in groove.items():
            bar_in_cycle = (bar % max(1, len(pattern) // n_step)) * n_step
            for pos, vel in _steps(pattern[bar_in_cycle:bar_in_cycle + n_step], steps):
                if pos >= fill_from and voice in ("snare", "kick", "clap", "rim", "brush"):
                    continue
                events.append((start + pos, 0.0, voice, vel * rng.uniform(0.88, 1.0)))
        if ghost_prob:
            for i in range(n_step):
                if rng.uniform() < ghost_prob and i % steps:
                    events.append((start + i / steps, 0.0, "snare", rng.uniform(0.12, 0.25)))
        if fill:
            toms = ("snare", "tom_hi", "tom_mid", "tom_lo")
            n = (bpb - fill_from) * steps
            hits = range(0, n, 1 if rng.uniform() < 0.5 else 2 if steps == 4 else 1)
            for k, i in enumerate(hits):
                voice = toms[min(len(toms) - 1, k * len(toms) // max(len(hits), 1))]
                events.append((start + fill_from + i / steps, 0.0, voice, 0.6 + 0.4 * k / max(len(hits), 1)))
        if section_bar == 0 and rng.uniform() < crash_prob:
            events.append((float(start), 0.0, "crash", rng.uniform(0.7, 1.0)))
            events.append((float(start), 0.0, "kick", 1.0))
    if timeline.pickup:  # an anacrusis: a snare/tom fill on the pickup beats
        n_steps = -timeline.first_beat * steps
        for i in range(0, n_steps, 2 if steps == 4 else 1):
            voice = ("snare", "tom_hi", "tom_mid", "tom_lo")[min(3, 4 * i // n_steps)]
            events.append((timeline.first_beat + i / steps, 0.0, voice, 0.55 + 0.4 * i / n_steps))
    start = timeline.start("drums")
    return [e for e in events if e[0] >= start - 1e-9 and arrangement.plays("drums", e[0], bpb)]


def _degree_pitch(degree: str, harmony: _Harmony, pos: float, low: int) -> int:
    """A bass pitch (MIDI) for a degree symbol at ``pos``: R root, 5 fifth, O octave,
    3 third, 6 sixth, 7 seventh, N next chord's root, A chromatic approach to it."""
    root = harmony.root_at(pos)
    tones = harmony.tones_at(pos)
    base = low + (root - low) % 12
    third = tones[1] if len(tones) > 1 and tones[1] < 7 else 4
    offsets = {"R": 0, "5": 7, "O": 12, "3": third, "6": 9, "7": tones[3] if len(tones) > 3 else 10}
    if degree in offsets:
        return base + offsets[degree]
    nxt = low + (harmony.next_root(pos) - low) % 12
    if degree == "N":
        return nxt
    if degree == "A":
        return nxt - 1 if nxt - 1 >= low else nxt + 1
    raise ValueError(f"unknown degree {degree!r}")


def _bass_bar(pattern: str, bpb: int, steps: int, rng: np.random.Generator) -> list[tuple[float, float, str, float]]:
    """(position, duration, degree, velocity) of one bar of a bass pattern (beats)."""
    beats = range(bpb)
    if pattern == "root_eighths":
        sub = 0.5 if steps == 4 else 1 / 3
        return [(i * sub, sub * 0.85, "R" if i % 8 != 7 else "5", 1.0 if i % 2 == 0 else 0.8)
                for i in range(int(round(bpb / sub)))]
    if pattern == "root_sixteenths":
        return [(i * 0.25, 0.2, "R", 1.0 if i % 4 == 0 else 0.75) for i in range(bpb * 4)]
    if pattern == "pop" and bpb == 4 and steps == 4:
        return [(0.0, 1.4, "R", 1.0), (1.5, 0.45, "R", 0.8), (2.0, 0.9, "5", 0.9), (3.0, 0.45, "R", 0.8),
                (3.5, 0.45, "A", 0.7)]
    if pattern == "rock" and bpb == 4 and steps == 4:
        return [(0.0, 0.9, "R", 1.0), (1.5, 0.4, "R", 0.8), (2.0, 0.9, "R", 0.9), (2.5, 0.4, "5", 0.7),
                (3.0, 0.9, "O", 0.8)]
    if pattern == "octave" and steps == 4:
        return [(i * 0.5, 0.4, "R" if i % 2 == 0 else "O", 1.0 if i % 2 else 0.8) for i in range(bpb * 2)]
    if pattern == "offbeat" and steps == 4:
        return [(b + 0.5, 0.4, "R", 1.0) for b in beats]
    if pattern == "sub":
        return [(0.0, bpb * 0.6, "R", 1.0), (bpb * 0.6 + 0.15, bpb * 0.3, _choice(rng, ("R", "5", "O")), 0.8)]
    if pattern == "hiphop" and steps == 4:
        return [(0.0, 0.7, "R", 1.0), (1.75, 0.5, "R", 0.8), (2.5, 0.4, _choice(rng, ("5", "O", "7")), 0.8)]
    if pattern == "funk" and steps == 4:
        events = [(0.0, 0.2, "R", 1.0)]
        for i in range(1, bpb * 4):
            if rng.uniform() < 0.38:
                events.append((i * 0.25, 0.2, _choice(rng, ("R", "O", "5", "7", "R")), rng.uniform(0.55, 0.95)))
        return events
    if pattern == "reggae" and steps == 4:
        return [(0.5, 0.45, "R", 0.9), (1.0, 0.9, "R", 1.0), (2.0, 0.45, "3", 0.8), (2.5, 0.45, "5", 0.8),
                (3.0, 0.9, "O", 0.85)][: bpb + 1]
    if pattern == "tumbao" and bpb == 4 and steps == 4:
        return [(1.5, 1.4, "5", 0.9), (3.0, 0.95, "N", 1.0)]
    if pattern == "bossa" and bpb == 4 and steps == 4:
        return [(0.0, 1.4, "R", 1.0), (1.5, 0.45, "5", 0.8), (2.0, 1.4, "5", 0.9), (3.5, 0.45, "R", 0.8)]
    if pattern == "walking":
        events = []
        for b in beats:
            if b == 0:
                deg = "R"
            elif b == bpb - 1:
                deg = "A"
            else:
                deg = _choice(rng, ("3", "5", "6", "O", "R"))
            events.append((float(b), 0.9, deg, 1.0 if b % 2 == 0 else 0.85))
        return events
    if pattern == "boogie" and steps == 3:
        seq = _choice(rng, (("R", "3", "5", "6"), ("R", "5", "6", "5"), ("R", "3", "5", "7")))
        return [(b + off, 0.6 if off == 0 else 0.3, seq[b % len(seq)], 1.0 if off == 0 else 0.75)
                for b in beats for off in (0.0, 2.0 / 3.0)]
    if pattern == "boomchick":
        return [(float(b), 0.8, "R" if b % 4 == 0 else "5", 1.0) for b in beats if b % 2 == 0]
    if pattern == "oompah":
        return [(0.0, 0.9, _choice(rng, ("R", "R", "5")), 1.0)]
    if pattern == "ternary":
        return [(float(b), 0.9, "R" if b % 2 == 0 else "5", 1.0 if b == 0 else 0.8) for b in beats]
    if pattern == "sustain":
        return [(0.0, bpb * 0.95, "R", 1.0)]
    if pattern == "arp_bass":
        seq = ("R", "5", "O", "5")
        return [(float(b), 0.9, seq[b % 4], 1.0 if b == 0 else 0.8) for b in beats]
    return [(float(b), 0.9, "R" if b % 2 == 0 else _choice(rng, ("R", "5")), 1.0 if b == 0 else 0.85) for b in beats]


def _comp_bar(pattern: str, bpb: int, steps: int, rng: np.random.Generator) -> list[tuple[float, float, float, int]]:
    """(position, duration, velocity, arpeggio index or -1 for a chord) of one comp bar."""
    beats = range(bpb)
    sub = 0.5 if steps == 4 else 1.0 / 3.0
    accent = [1.0 if b == 0 else 0.8 for b in beats]
    if pattern == "block_beats":
        return [(float(b), 0.9, accent[b], -1) for b in beats]
    if pattern == "block_bar":
        return [(0.0, bpb * 0.98, 1.0, -1)]
    if pattern == "half":
        half = bpb / 2 if bpb % 2 == 0 else bpb
        return [(h, half * 0.95, 1.0 if h == 0 else 0.85, -1) for h in np.arange(0, bpb, half)]
    if pattern == "eighths":
        return [(i * sub, sub * 0.8, 1.0 if i % round(1 / sub) == 0 else 0.7, -1) for i in range(int(round(bpb / sub)))]
    if pattern == "tremolo":  # tremolo-picked 16ths, accents only on the beats
        return [(i * 0.25, 0.2, 1.0 if i % 4 == 0 else 0.8, -1) for i in range(bpb * 4)]
    if pattern == "anticipation" and steps == 4:  # chords pushed an 8th ahead of the beat and the bar
        return [(b - 0.5 if b else 0.0, 0.4, 0.9, -1) for b in range(bpb) if b % 2 == 0 or rng.uniform() < 0.4] + \
            [(bpb - 0.5, 0.45, 1.0, -1)]
    if pattern == "chugs":
        return [(i * 0.25, 0.18, 1.0 if i % 4 == 0 else 0.6, -1) for i in range(bpb * 4) if i % 4 != 3]
    if pattern == "offbeats":
        if steps == 3:
            return [(b + k / 3.0, 0.25, 0.8, -1) for b in beats for k in (1, 2)]
        return [(b + 0.5, 0.3, 0.9, -1) for b in beats]
    if pattern == "backbeat":
        return [(float(b), 0.35, 0.9, -1) for b in beats if b % 2 == 1 or (bpb == 3 and b > 0)]
    if pattern == "oompah":
        return [(float(b), 0.6, 0.8, -1) for b in beats if b > 0]
    if pattern == "stabs16" and steps == 4:
        events = [(0.0, 0.2, 1.0, -1)]
        events += [(i * 0.25, 0.2, rng.uniform(0.6, 0.95), -1) for i in range(1, bpb * 4) if rng.uniform() < 0.3]
        return events
    if pattern == "charleston" and steps == 4:
        events = [(0.0, 0.4, 1.0, -1), (1.5, 0.4, 0.9, -1)]
        events += [(b + 0.5, 0.3, 0.7, -1) for b in range(2, bpb) if rng.uniform() < 0.4]
        return events
    if pattern == "jazz_comp" and steps == 4:
        events = [(b + off, 0.4, rng.uniform(0.6, 1.0), -1)
                  for b in beats for off in (0.0, 0.5) if rng.uniform() < (0.35 if off else 0.45)]
        return events or [(0.0, 0.5, 0.9, -1)]
    if pattern == "montuno" and steps == 4:  # syncopated broken chords on an 8th grid
        hits = [i * 0.5 for i, c in enumerate("x.xx.xxx"[: bpb * 2]) if c == "x"]
        return [(pos, 0.4, 1.0 if pos == 0 else 0.8, k % 4) for k, pos in enumerate(hits)]
    if pattern == "shuffle_comp" and steps == 3:
        return [(b + off, 0.3 if off else 0.6, 0.9 if off == 0 else 0.7, -1) for b in beats for off in (0.0, 2.0 / 3.0)]
    if pattern == "strum":
        if steps == 3:
            cells = [(0.0, 1.0), (2 / 3, 0.7)] if rng.uniform() < 0.5 else [(0.0, 1.0), (1 / 3, 0.5), (2 / 3, 0.7)]
            return [(b + off, 0.3, v, -2 if k % 2 else -1) for b in beats for k, (off, v) in enumerate(cells)]
        cells = ((0.0, 1.0), (1.0, 0.8), (1.5, 0.6), (2.5, 0.6), (3.0, 0.8), (3.5, 0.6))
        return [(off, 0.45, v, -1 if off == int(off) else -2) for off, v in cells if off < bpb]
    # arpeggios: players lean on the beats (and most on the downbeat)
    per_beat = int(round(1 / sub))
    n_notes = bpb * per_beat

    def lean(i: int) -> float:
        return 1.0 if i == 0 else 0.85 if i % per_beat == 0 else 0.6

    if pattern == "arp8":
        order = (0, 1, 2, 3, 2, 1)
        return [(i * sub, sub * 1.8, lean(i), order[i % len(order)]) for i in range(n_notes)]
    if pattern == "arp_up":
        return [(i * sub, sub * 2.5, lean(i), i % 4) for i in range(n_notes)]
    if pattern == "alberti":
        order = (0, 2, 1, 2)
        return [(i * sub, sub * 0.95, lean(i), order[i % 4]) for i in range(n_notes)]
    if pattern == "arp_ternary":
        order = (0, 1, 2, 3, 2, 1)
        return [(i / 3.0, 0.6, 1.0 if i == 0 else 0.85 if i % 3 == 0 else 0.6, order[i % 6]) for i in range(bpb * 3)]
    return [(float(b), 0.9, accent[b], -1) for b in beats]


def _compose_bass(style: _Style, timeline: _Timeline, harmony: _Harmony, arrangement: _Arrangement,
                  duration_s: float, rng: np.random.Generator) -> list[_Event]:
    bpb, steps = timeline.beats_per_bar, timeline.steps_per_beat
    pattern = _choice(rng, style.bass_patterns)
    low = int(rng.integers(28, 36))
    start = timeline.start("bass")
    events: list[_Event] = []
    for bar in _bars(timeline, duration_s):
        for pos, dur, degree, vel in _bass_bar(pattern, bpb, steps, rng):
            p = bar * bpb + pos
            if p >= start - 1e-9 and arrangement.plays("bass", p, bpb):
                events.append((p, dur, (_degree_pitch(degree, harmony, p, low),), vel * arrangement.gain(p, bpb)))
    return events


def _compose_comp(part: str, pattern: str, timeline: _Timeline, harmony: _Harmony, arrangement: _Arrangement,
                  duration_s: float, octave: int, rng: np.random.Generator) -> list[_Event]:
    """Chords or arpeggios (payload: tuple of MIDI pitches) following ``pattern``."""
    bpb, steps = timeline.beats_per_bar, timeline.steps_per_beat
    start = timeline.start(part)
    events: list[_Event] = []
    for bar in _bars(timeline, duration_s):
        for pos, dur, vel, arp in _comp_bar(pattern, bpb, steps, rng):
            p = bar * bpb + pos
            if p < start - 1e-9 or not arrangement.plays(part, p, bpb):
                continue
            voicing = [m + 12 * octave for m in harmony.voicing_at(p)]
            if arp >= 0:
                notes = sorted(voicing + [voicing[0] + 12])
                payload: object = (notes[arp % len(notes)],)
            else:
                payload = tuple(voicing) if arp == -1 else tuple(voicing[::-1])  # -2: an upstroke
            events.append((p, dur, payload, vel * rng.uniform(0.85, 1.0) * arrangement.gain(p, bpb)))
    return events


def _compose_pad(timeline: _Timeline, harmony: _Harmony, arrangement: _Arrangement, duration_s: float,
                 rng: np.random.Generator) -> list[_Event]:
    bpb = timeline.beats_per_bar
    events: list[_Event] = []
    span = harmony.chord_beats
    first = math.floor(timeline.start("pad") / span)
    last = int(timeline.beat_index[np.searchsorted(timeline.beat_times, duration_s) - 1] / span) + 1
    for k in range(first, last + 1):
        p = k * span
        if p >= timeline.start("pad") and arrangement.plays("pad", p, bpb):
            shift = int(_choice(rng, (0, 12)))
            voicing = tuple(m + shift for m in harmony.voicing_at(p))
            events.append((p, span * 0.98, voicing, 0.8 * arrangement.gain(p, bpb)))
    return events


_RHYTHM_CELLS = {
    4: ((1.0, 1.0), (0.5, 0.5, 1.0), (1.5, 0.5), (0.5, 1.0, 0.5), (2.0,), (0.75, 0.75, 0.5),
        (0.25, 0.25, 0.5, 1.0), (1.0, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5)),
    3: ((1.0,), (2 / 3, 1 / 3), (1 / 3, 1 / 3, 1 / 3), (2.0,), (1 / 3, 2 / 3)),
}


def _compose_lead(timeline: _Timeline, harmony: _Harmony, arrangement: _Arrangement, duration_s: float,
                  rng: np.random.Generator) -> list[_Event]:
    """Phrases of two bars (rhythm cells, a random walk on the scale, chord tones on
    beats), separated by rests of up to two bars."""
    bpb, steps = timeline.beats_per_bar, timeline.steps_per_beat
    cells = _RHYTHM_CELLS[steps]
    centre = int(rng.integers(64, 76))
    scale = harmony.scale
    degree = 0
    events: list[_Event] = []
    bars = _bars(timeline, duration_s)
    bar = bars.start
    while bar < bars.stop:
        p = float(bar * bpb)
        end = p + 2 * bpb
        while p < end - 1e-9:
            for length in _choice(rng, cells):
                if p >= end - 1e-9:
                    break
                degree = int(np.clip(degree + _choice(rng, (-2, -1, -1, 0, 1, 1, 2, 3, -3)), -7, 9))
                octave, step = divmod(degree, len(scale))
                midi = centre - (centre % 12) + harmony.key_pc + 12 * octave + scale[step]
                if abs(p - round(p)) < 1e-6 and rng.uniform() < 0.7:  # chord tone on the beat
                    root = harmony.root_at(p)
                    candidates = [midi + d for d in range(-3, 4) if (midi + d - root) % 12 in harmony.tones_at(p)]
                    midi = min(candidates, key=lambda m: abs(m - midi)) if candidates else midi
                if rng.uniform() > 0.12 and p >= timeline.start("lead") and arrangement.plays("lead", p, bpb):
                    events.append((p, length * 0.9, (int(midi),), rng.uniform(0.7, 1.0) * arrangement.gain(p, bpb)))
                p += length
        bar += 2 + int(rng.integers(0, 3))
    return events


# =========================================================================== rendering


def _render_part(part: _Part, timeline: _Timeline, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Place every event of ``part`` (micro-timed) into a buffer of ``n`` samples."""
    out = np.zeros(n)
    if not part.events:
        return out
    pos = np.array([e[0] for e in part.events])
    dur = np.array([e[1] for e in part.events])
    onsets = timeline.time(pos) + part.offset_s + rng.normal(0.0, part.jitter_s, len(pos)) if part.jitter_s else \
        timeline.time(pos) + part.offset_s
    ends = timeline.time(pos + dur)
    duration_s = n / sr
    order = np.argsort(onsets, kind="stable")
    if isinstance(part.instrument, _Kit):
        kit = part.instrument
        hat_times = np.sort(onsets[[e[2] in ("chat", "phat") for e in part.events]])
        for i in order:
            t = onsets[i]
            if t >= duration_s or t < -3.0:
                continue
            voice, vel = part.events[i][2], part.events[i][3]
            sound = kit.sound(voice)
            if voice == "ohat":  # a closed hat chokes a ringing open one
                nxt = np.searchsorted(hat_times, t + 1e-3)
                if nxt < len(hat_times):
                    keep = max(int((hat_times[nxt] - t) * sr), 64)
                    if keep < len(sound):
                        sound = _fade_edges(sound[:keep].copy(), sr, 0.0, 0.008)
            _add_at(out, sound, int(round(t * sr)), vel**1.5 * _db(kit.levels_db[voice]))
        return out
    instrument = part.instrument
    for i in order:
        t = onsets[i]
        if t >= duration_s or ends[i] < -0.5:
            continue
        pitches, vel = part.events[i][2], part.events[i][3]
        note_s = max(ends[i] - t, 0.03)
        if len(pitches) == 1:
            sound = instrument.note(pitches[0], note_s)
        else:
            spread = part.strum_s * rng.uniform(0.7, 1.3) if part.strum_s else 0.0
            sound = instrument.chord(pitches, note_s, round(spread, 3))
        _add_at(out, sound, int(round(t * sr)), vel**1.3)
    return out


def _reverb_ir(sr: int, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying, low-passed noise with a pre-delay: a room's tail."""
    n = int(sr * min(rt60_s, 2.5))
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60_s)
    ir = _filter(ir, "lowpass", rng.uniform(2500, 8000), sr)
    ir = np.concatenate([np.zeros(int(sr * rng.uniform(0.005, 0.03))), ir])
    return ir / np.sqrt(np.sum(ir**2))


def _sidechain(n: int, sr: int, kick_times: np.ndarray, depth: float, release_s: float) -> np.ndarray:
    """Gain that ducks by ``depth`` at each kick and recovers with ``release_s``."""
    impulses = np.zeros(n)
    idx = (kick_times * sr).astype(np.int64)
    impulses[idx[(idx >= 0) & (idx < n)]] = 1.0
    a = math.exp(-1.0 / (release_s * sr))
    env = np.minimum(signal.lfilter([1.0], [1.0, -a], impulses), 1.0)
    return 1.0 - depth * env


def _beatless_intro(end_s: float, harmony: _Harmony, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A free-time intro before the beat: a swelling pad chord and a few unmetered
    bell or piano notes (onsets that are deliberately not on any grid)."""
    out = np.zeros(n)
    pad = _make_instrument("pad", sr, rng)
    voicing = harmony.voicing_at(0.0)
    end = int(end_s * sr)
    swell = pad.chord(voicing, end_s + 0.5, 0.0)
    length = min(len(swell), n)
    ramp = np.clip(np.arange(length) / max(end, 1), 0.0, 1.0) ** 2
    out[:length] += 0.6 * swell[:length] * ramp
    if rng.uniform() < 0.7:
        bell = _make_instrument(_choice(rng, ("bell", "piano", "harp", "mallet")), sr, rng)
        for t in np.sort(rng.uniform(0.2, max(end_s - 0.3, 0.3), int(rng.integers(1, 6)))):
            _add_at(out, bell.note(int(_choice(rng, voicing)) + 12, rng.uniform(0.5, 2.0)), int(t * sr),
                    rng.uniform(0.15, 0.4))
    return out


def _comp_level_db(pattern: str, has_drums: bool, rng: np.random.Generator) -> float:
    """Comping level relative to the drums: off-beat patterns (skank, stabs) sit lower,
    as in real mixes, so that they colour the groove rather than mask the beat."""
    if not has_drums:
        return 0.0
    if pattern in ("offbeats", "backbeat", "stabs16", "montuno", "charleston", "jazz_comp"):
        return rng.uniform(-11.0, -5.0)
    return rng.uniform(-7.0, -2.0)


def synthesize_track(index: int, seed: int, duration_s: float, sr: int = 22050,
                     styles: Sequence[str] | None = None) -> SynthTrack:
    """Render demo track ``index`` of the demo dataset ``seed``.

    Args:
        index: track number (>= 0); its style is :func:`track_style` ``(index, seed, styles)``.
        seed: dataset seed (>= 0).
        duration_s: length of the audio in seconds (> 0).
        sr: sample rate in Hz.
        styles: the styles to deal from (:func:`check_styles`); None: the demo's :data:`STYLES`.

    The result depends on ``(index, seed, duration_s, sr, styles)`` only and is
    bit-identical for the same arguments; a track keeps its audio under another style
    list when it keeps its style. See the module docstring for the annotation policy.
    """
    if duration_s <= 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s}")
    if sr < 8000:
        raise ValueError(f"sr must be >= 8000 Hz, got {sr}")
    style = _STYLE_BY_NAME[track_style(index, seed, styles)]
    n = int(round(duration_s * sr))
    rng = _stream(seed, index, "plan")
    meter = _choice(rng, [m for m, _ in style.meters], [w for _, w in style.meters])
    timeline, bpm, tempo_kind, intro = _make_timeline(style, meter, n / sr, rng)
    harmony = _make_harmony(style, timeline.beats_per_bar, rng)

    has_drums = rng.uniform() < style.drums
    names = ["bass", "comp"] + (["drums"] if has_drums else [])
    if rng.uniform() < (style.arp if has_drums else max(style.arp, 0.5)):
        names.append("arp")
    if rng.uniform() < style.pad:
        names.append("pad")
    if rng.uniform() < style.lead:
        names.append("lead")
    arrangement = _make_arrangement(names, timeline, n / sr, rng)

    music_rng = _stream(seed, index, "music")
    human = style.human_s
    parts: list[_Part] = []
    if has_drums:
        kit = _make_kit(_choice(music_rng, style.kits), sr, _stream(seed, index, "kit"))
        events = _compose_drums(style, meter, timeline, arrangement, n / sr, music_rng)
        parts.append(_Part("drums", kit, events, 0.0, music_rng.uniform(0.05, 0.25),
                           music_rng.normal(0.0, 0.002), human * 0.35))
    bass_kind = _choice(music_rng, style.bass)
    parts.append(_Part(
        "bass", _make_instrument(bass_kind, sr, music_rng),
        _compose_bass(style, timeline, harmony, arrangement, n / sr, music_rng),
        music_rng.uniform(-5.0, 0.0), music_rng.uniform(0.0, 0.1), music_rng.normal(0.0, human * 0.5), human,
        eq=(music_rng.uniform(25, 50), music_rng.uniform(1500, 5000)),
    ))
    comp_kind = _choice(music_rng, style.comp)
    comp_pattern = _choice(music_rng, style.comp_patterns)
    strum = music_rng.uniform(0.006, 0.02) if comp_kind in ("clean_guitar", "nylon") else \
        music_rng.uniform(0.0, 0.006)
    parts.append(_Part(
        "comp", _make_instrument(comp_kind, sr, music_rng),
        _compose_comp("comp", comp_pattern, timeline, harmony, arrangement, n / sr,
                      -1 if comp_kind == "dist_guitar" else 0, music_rng),
        _comp_level_db(comp_pattern, has_drums, music_rng), music_rng.uniform(0.1, 0.45),
        music_rng.normal(0.0, human * 0.5), human, strum_s=strum,
        eq=(music_rng.uniform(80, 250), music_rng.uniform(4000, 11000)),
    ))
    if "arp" in names:
        arp_pattern = ("arp_ternary" if timeline.steps_per_beat == 3
                       else _choice(music_rng, ("arp8", "arp_up", "alberti")))
        parts.append(_Part(
            "arp", _make_instrument(_choice(music_rng, style.arp_instruments), sr, music_rng),
            _compose_comp("arp", arp_pattern, timeline, harmony, arrangement, n / sr, 1, music_rng),
            music_rng.uniform(-10.0, -4.0) if has_drums else music_rng.uniform(-4.0, 0.0),
            music_rng.uniform(0.2, 0.6), music_rng.normal(0.0, human * 0.5), human,
            eq=(music_rng.uniform(150, 400), music_rng.uniform(5000, 11000)),
        ))
    if "pad" in names:
        parts.append(_Part(
            "pad", _make_instrument(_choice(music_rng, ("pad", "strings", "organ", "choir")), sr, music_rng),
            _compose_pad(timeline, harmony, arrangement, n / sr, music_rng),
            music_rng.uniform(-16.0, -8.0), music_rng.uniform(0.3, 0.8), 0.0, 0.0,
            eq=(music_rng.uniform(150, 400), music_rng.uniform(3000, 8000)),
        ))
    if "lead" in names:
        parts.append(_Part(
            "lead", _make_instrument(_choice(music_rng, style.lead_instruments), sr, music_rng),
            _compose_lead(timeline, harmony, arrangement, n / sr, music_rng),
            music_rng.uniform(-9.0, -3.0), music_rng.uniform(0.2, 0.6), music_rng.normal(0.0, human * 0.7),
            human * 1.3, eq=(music_rng.uniform(150, 400), music_rng.uniform(5000, 11000)),
        ))

    audio = _mix(parts, style, timeline, harmony, intro, n, sr, _stream(seed, index, "mix"))
    first = np.searchsorted(timeline.beat_index, timeline.first_beat)
    last = np.searchsorted(timeline.beat_times, n / sr)
    beat_times = timeline.beat_times[first:last]
    beat_index = timeline.beat_index[first:last]
    beat_times = np.round(beat_times, 6)  # the precision of the .beats files
    keep = (beat_times >= 0.0) & (beat_times < n / sr)
    beat_times, beat_index = beat_times[keep], beat_index[keep]
    return SynthTrack(
        audio=audio,
        sr=sr,
        beat_times=beat_times,
        beat_positions=(np.mod(beat_index, timeline.beats_per_bar) + 1).astype(np.int64),
        bpm=bpm,
        beats_per_bar=timeline.beats_per_bar,
        style=style.name,
        meter=meter,
        tempo_kind=tempo_kind,
        has_drums=has_drums,
        intro=intro,
        swing_ratio=timeline.swing_ratio,
    )


def _mix(parts: list[_Part], style: _Style, timeline: _Timeline, harmony: _Harmony, intro: str,
         n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Render, level, EQ, duck, reverberate, master and add the noise floor."""
    timing_rng = np.random.default_rng(rng.integers(2**63))
    kick_times = None
    dry = np.zeros(n)
    send = np.zeros(n)
    reference_rms = 0.1
    for part in parts:
        stem = _render_part(part, timeline, n, sr, timing_rng)
        if not np.any(stem):
            continue
        stem = _filter(stem, "highpass", part.eq[0], sr)
        if part.eq[1] < 0.45 * sr:
            stem = _filter(stem, "lowpass", part.eq[1], sr)
        stem *= reference_rms * _db(part.level_db) / _active_rms(stem, sr)
        if part.name == "drums":
            kicks = [e[0] for e in part.events if e[2] == "kick"]
            kick_times = timeline.time(np.array(kicks)) if kicks else None
        elif part.name in ("bass", "pad", "comp") and kick_times is not None and style.name == "electronic":
            stem *= _sidechain(n, sr, kick_times, rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.2))
        dry += stem
        send += part.send * stem
    if intro == "beatless":
        free = _beatless_intro(float(timeline.time(timeline.first_beat)), harmony, n, sr, rng)
        dry += reference_rms * _db(rng.uniform(-8.0, -2.0)) * free / _active_rms(free, sr)
    rt60 = rng.uniform(*style.reverb_s)
    wet = signal.oaconvolve(send, _reverb_ir(sr, rt60, rng))[:n]
    mix = dry + rng.uniform(0.3, 0.9) * wet
    # master: band limits, occasional lo-fi, saturation
    if rng.uniform() < 0.1:
        mix = _filter(mix, "bandpass", (rng.uniform(150, 400), rng.uniform(2500, 4500)), sr)
    else:
        mix = _filter(mix, "highpass", rng.uniform(20, 60), sr)
        if rng.uniform() < 0.4:
            mix = _filter(mix, "lowpass", rng.uniform(4500, 10000), sr)
    mix /= np.max(np.abs(mix)) + 1e-12
    drive = rng.uniform(*style.drive)
    mix = np.tanh(drive * mix) / np.tanh(drive)
    # fades: sometimes the excerpt ends by fading out (annotations go on under the fade)
    if rng.uniform() < 0.15:
        fade = int(min(rng.uniform(2.0, 5.0), 0.3 * n / sr) * sr)
        mix[n - fade:] *= np.linspace(1.0, _db(rng.uniform(-24.0, -12.0)), fade)
    # noise floor, crackle, hum
    rms = _active_rms(mix, sr)
    mix += rms * _db(rng.uniform(-65.0, -38.0)) * _pink_noise(n, rng)
    if rng.uniform() < style.crackle:
        clicks = np.zeros(n)
        count = int(rng.uniform(3, 15) * n / sr)
        clicks[rng.integers(0, n, count)] = rng.standard_normal(count)
        mix += rms * _db(rng.uniform(-30.0, -18.0)) * _filter(clicks, "highpass", 1500, sr)
    if rng.uniform() < 0.05:
        t = np.arange(n) / sr
        mains = _choice(rng, (50.0, 60.0))
        hum = np.sin(2 * np.pi * mains * t) + 0.5 * np.sin(6 * np.pi * mains * t)
        mix += rms * _db(rng.uniform(-45.0, -30.0)) * hum
    peak = np.max(np.abs(mix))
    return (mix * rng.uniform(0.35, 0.97) / (peak + 1e-12)).astype(np.float32)


# =========================================================================== files


def write_demo_batch(out_dir: str | os.PathLike, indices: Iterable[int], seed: int, duration_s: float,
                     sr: int = 22050, styles: Sequence[str] | None = None) -> list[Path]:
    """Render demo tracks ``indices`` (dealt from ``styles``, default :data:`STYLES`) into
    ``out_dir`` (created if needed).

    Per track ``<stem>`` (:func:`track_stem`): ``<stem>.wav`` (16-bit PCM, mono, ``sr``),
    ``<stem>.beats`` (``time<TAB>position`` lines, seconds with 6 decimals, 1 = downbeat)
    and, for constant-tempo tracks only, ``<stem>.labels.json`` (``fileName``, ``bpm``,
    ``duration`` in s, ``downbeatOffset`` = first annotated downbeat in s, ``beatsPerBar``).
    Files are written under temporary names and renamed when complete.

    Returns:
        The paths of the written ``.wav`` files, in the order of ``indices``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index in indices:
        track = synthesize_track(int(index), seed, duration_s, sr, styles)
        stem = track_stem(int(index))
        wav = out / f"{stem}.wav"
        atomic_write(wav, partial(sf.write, data=track.audio, samplerate=track.sr, subtype="PCM_16", format="WAV"))
        write_beats_file(out / f"{stem}.beats", track.beat_times, track.beat_positions)
        labels = out / f"{stem}.labels.json"
        if track.bpm is not None and track.downbeat_offset_s is not None:
            grid = LabelGrid(bpm=track.bpm, duration_s=round(track.duration_s, 6),
                             downbeat_offset_s=track.downbeat_offset_s, file_name=wav.name,
                             beats_per_bar=track.beats_per_bar)
            write_label_json(labels, grid)
        elif labels.exists():
            labels.unlink()  # a stale grid from an earlier render of a different track
        written.append(wav)
    return written
