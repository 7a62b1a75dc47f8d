"""The embedded demo dataset: determinism, annotation invariants, variety, alignment of
the audio's onsets with the annotated beats, and the files of a demo batch."""

from collections import Counter
from functools import lru_cache

import librosa
import numpy as np
import pytest
import soundfile as sf

from beatgrid.annotations import label_grid_to_annotation, read_beats_file, read_label_json
from beatgrid.data import synth
from beatgrid.data.synth import (
    ALL_STYLES,
    EXTRA_STYLES,
    STYLES,
    SynthTrack,
    synthesize_track,
    track_stem,
    track_style,
    write_demo_batch,
)

SR = 22050
N_TRACKS = 48  # the default demo size


def _track(index: int, seed: int = 0, duration_s: float = 6.0) -> SynthTrack:
    """A rendered track, cached across tests (read-only)."""
    return _cached_track(index, seed, float(duration_s))


@lru_cache(maxsize=None)
def _cached_track(index: int, seed: int, duration_s: float) -> SynthTrack:
    return synthesize_track(index, seed, duration_s, SR)


def _indices(styles: set[str], seed: int = 0) -> list[int]:
    return [i for i in range(N_TRACKS) if track_style(i, seed) in styles]


# --------------------------------------------------------------------------- identity


def test_track_stem():
    assert track_stem(7) == "track0007"
    assert track_stem(12345) == "track12345"
    with pytest.raises(ValueError, match="index"):
        track_stem(-1)


def test_same_arguments_give_identical_tracks():
    a = synthesize_track(3, 0, 4.0, SR)
    b = synthesize_track(3, 0, 4.0, SR)
    assert a.audio.dtype == np.float32
    assert np.array_equal(a.audio, b.audio)
    assert np.array_equal(a.beat_times, b.beat_times)
    assert np.array_equal(a.beat_positions, b.beat_positions)
    assert (a.bpm, a.style, a.meter) == (b.bpm, b.style, b.meter)


def test_index_and_seed_change_the_track():
    base = _track(3, 0, 4.0)
    assert not np.array_equal(base.audio, _track(4, 0, 4.0).audio)
    assert not np.array_equal(base.audio, _track(3, 1, 4.0).audio)


def test_style_depends_on_seed_and_index_only_and_covers_every_style():
    for seed in (0, 1, 7):
        styles = [track_style(i, seed) for i in range(N_TRACKS)]
        assert styles == [track_style(i, seed) for i in range(N_TRACKS)]
        # every block of len(STYLES) consecutive indices holds each style once
        assert set(styles[: len(STYLES)]) == set(STYLES)
        counts = Counter(styles)
        assert min(counts[s] for s in STYLES) >= N_TRACKS // len(STYLES)
    assert [track_style(i, 0) for i in range(16)] != [track_style(i, 1) for i in range(16)]
    for i in range(0, N_TRACKS, 5):
        assert _track(i).style == track_style(i, 0)


def test_a_track_does_not_depend_on_its_batch(tmp_path):
    write_demo_batch(tmp_path / "a", [2, 5], seed=0, duration_s=3.0)
    write_demo_batch(tmp_path / "b", [5], seed=0, duration_s=3.0)
    for suffix in (".wav", ".beats"):
        a = (tmp_path / "a" / f"track0005{suffix}").read_bytes()
        b = (tmp_path / "b" / f"track0005{suffix}").read_bytes()
        assert a == b, suffix


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="duration_s"):
        synthesize_track(0, 0, 0.0)
    with pytest.raises(ValueError, match="duration_s"):
        synthesize_track(0, 0, float("nan"))
    with pytest.raises(ValueError, match="index"):
        synthesize_track(-1, 0, 2.0)
    with pytest.raises(ValueError, match="seed"):
        synthesize_track(0, -3, 2.0)


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("index", range(N_TRACKS))
def test_annotation_and_audio_invariants(index):
    track = _track(index)
    n = round(6.0 * SR)
    assert track.audio.shape == (n,) and track.audio.dtype == np.float32
    assert np.all(np.isfinite(track.audio))
    assert 0.05 < np.max(np.abs(track.audio)) <= 1.0
    assert np.sqrt(np.mean(track.audio**2)) > 1e-3

    times, positions, bpb = track.beat_times, track.beat_positions, track.beats_per_bar
    assert len(times) >= 2
    assert np.all(times >= 0.0) and np.all(times < track.duration_s)
    assert np.all(np.diff(times) > 0.0)
    assert np.all((positions >= 1) & (positions <= bpb))
    assert np.array_equal(positions[1:], positions[:-1] % bpb + 1)  # cycles 1..bpb, no gaps
    assert np.array_equal(track.downbeat_times(), times[positions == 1])

    ibi = np.diff(times)
    assert np.all((60.0 / ibi >= synth.BPM_MIN - 0.5) & (60.0 / ibi <= synth.BPM_MAX + 0.5))
    if track.tempo_kind == "constant":
        assert track.bpm is not None
        np.testing.assert_allclose(ibi, 60.0 / track.bpm, atol=2e-6)
    else:
        assert track.bpm is None


def test_a_track_annotation_follows_its_meter():
    for track in map(_track, range(N_TRACKS)):
        assert track.beats_per_bar == synth._METERS[track.meter][0], track.meter


def test_every_groove_fits_its_meter():
    for style, by_meter in synth._GROOVES.items():
        for meter, grooves in by_meter.items():
            bpb, steps = synth._METERS[meter]
            for groove in grooves:
                for voice, pattern in groove.items():
                    assert voice in synth._DRUM_VOICES, (style, voice)
                    assert len(pattern) % (bpb * steps) == 0, (style, meter, voice)
                    assert set(pattern) <= set(synth._VELOCITY) | {"."}, (style, voice)


# --------------------------------------------------------------------------- variety


def test_the_default_demo_is_varied():
    """Over 48 tracks: tempi spread over 60-200 BPM with fractional values, at least
    three meters, drifting / changing tempi, drumless tracks, intros, swing."""
    tracks = [_track(i) for i in range(N_TRACKS)]
    constant = [t.bpm for t in tracks if t.bpm is not None]
    assert min(constant) < 75.0 and max(constant) > 165.0
    assert sum(abs(b - round(b)) > 1e-6 for b in constant) >= 0.8 * len(constant)
    assert len({t.meter for t in tracks}) >= 4
    assert len({t.beats_per_bar for t in tracks}) >= 3
    kinds = Counter(t.tempo_kind for t in tracks)
    assert kinds["constant"] >= 0.6 * N_TRACKS
    assert sum(kinds[k] for k in ("drift", "rubato", "change")) >= 4
    assert all(t.bpm is None for t in tracks if t.tempo_kind != "constant")
    assert sum(not t.has_drums for t in tracks) >= 4
    intros = Counter(t.intro for t in tracks)
    assert len(intros) >= 4 and intros["none"] < 0.5 * N_TRACKS
    assert any(t.beat_positions[0] != 1 for t in tracks)  # pickups and excerpts
    assert sum(t.swing_ratio > 0.52 for t in tracks) >= 5


def test_intros_delay_the_first_annotated_beat():
    late = [t for t in map(_track, range(N_TRACKS)) if t.intro in ("silence", "beatless")]
    assert late
    for track in late:
        first = track.beat_times[0]
        assert first > 0.35
        head = track.audio[: int((first - 0.05) * SR)]
        if track.intro == "silence":  # only the noise floor before the music
            assert np.max(np.abs(head)) < 0.05 * np.max(np.abs(track.audio))


def test_tempo_changes_are_real():
    changing = [t for t in map(_track, range(N_TRACKS)) if t.tempo_kind != "constant"]
    assert changing
    spread = [np.ptp(60.0 / np.diff(t.beat_times)) for t in changing]
    assert max(spread) > 5.0  # BPM


# --------------------------------------------------------------------------- onsets vs beats


def _onset_alignment(track: SynthTrack) -> tuple[float, float, float]:
    """(fraction of beats with a detected onset within 30 ms, median signed offset
    onset - beat in s, onset strength at beats / between beats)."""
    hop = 128
    env = librosa.onset.onset_strength(y=track.audio, sr=SR, hop_length=hop, n_fft=512)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=hop, backtrack=True, units="time")
    beats = track.beat_times
    after = onsets[np.clip(np.searchsorted(onsets, beats), 0, len(onsets) - 1)]
    before = onsets[np.clip(np.searchsorted(onsets, beats) - 1, 0, len(onsets) - 1)]
    offset = np.where(np.abs(after - beats) < np.abs(before - beats), after, before) - beats

    def strength(times: np.ndarray) -> float:  # the envelope's peak near each time
        frames = np.round(times * SR / hop).astype(int)
        return float(np.mean([env[max(0, f - 2):f + 5].max() for f in frames]))

    contrast = strength(beats) / strength((beats[:-1] + beats[1:]) / 2)
    return float(np.mean(np.abs(offset) <= 0.03)), float(np.median(offset)), contrast


def test_drum_onsets_sit_on_the_annotated_beats():
    """Drum tracks of several styles: nearly every beat has an onset within 30 ms (a
    breakdown without drums may hold a few beats without one), onsets are not
    systematically early or late, and the onset strength peaks on the beats."""
    styles = ("rock", "electronic", "metal", "country", "prog", "funk", "hiphop")
    results = []
    for style in styles:
        track = _track(_indices({style})[0], 0, 12.0)
        assert track.has_drums
        results.append(_onset_alignment(track))
    within, offset, contrast = map(np.array, zip(*results))
    assert np.all(within >= 0.6) and within.mean() >= 0.85, dict(zip(styles, within.round(2)))
    assert np.all(np.abs(offset) < 0.02), dict(zip(styles, offset.round(3)))
    assert np.all(contrast > 1.2) and np.median(contrast) > 1.5, dict(zip(styles, contrast.round(2)))


@pytest.mark.parametrize("style", ["ambient", "classical"])
def test_harmonic_onsets_carry_the_beat_without_drums(style):
    index = _indices({style})[0]
    track = _track(index, 0, 12.0)
    assert not track.has_drums
    within, offset, contrast = _onset_alignment(track)
    assert within >= 0.6, within
    assert abs(offset) < 0.03, offset
    assert contrast > 1.1, contrast


def test_shifted_annotations_would_be_caught():
    """The alignment check above is not vacuous: half a beat off, it fails."""
    track = _track(_indices({"rock"})[0], 0, 12.0)
    half = np.diff(track.beat_times).mean() / 2
    keep = track.beat_times + half < track.duration_s
    shifted = SynthTrack(track.audio, SR, track.beat_times[keep] + half, track.beat_positions[keep],
                         track.bpm, track.beats_per_bar, track.style)
    within, _, contrast = _onset_alignment(shifted)
    assert contrast < 1.0 < _onset_alignment(track)[2]


# --------------------------------------------------------------------------- files


def test_demo_batch_files_round_trip(tmp_path):
    duration = 6.0
    tracks = {i: _track(i, 0, duration) for i in range(N_TRACKS)}
    constant = [i for i, t in tracks.items() if t.bpm is not None]
    pickups = [i for i in constant if tracks[i].beat_positions[0] != 1]
    late = [i for i in constant if tracks[i].intro in ("silence", "beatless")]
    changing = [i for i, t in tracks.items() if t.bpm is None]
    indices = sorted({constant[0], pickups[0], late[0], changing[0]})
    # a stale grid left by an earlier, different render must not survive
    (tmp_path / f"{track_stem(changing[0])}.labels.json").write_text("{}")

    wavs = write_demo_batch(tmp_path, indices, seed=0, duration_s=duration)
    assert wavs == [tmp_path / f"{track_stem(i)}.wav" for i in indices]
    assert not list(tmp_path.glob(".*tmp*"))
    for index in indices:
        track, stem = tracks[index], track_stem(index)
        audio, sr = sf.read(tmp_path / f"{stem}.wav", dtype="float32")
        assert sr == SR and audio.shape == track.audio.shape
        assert sf.info(tmp_path / f"{stem}.wav").subtype == "PCM_16"
        np.testing.assert_allclose(audio, track.audio, atol=1.0 / 32767)

        beats = read_beats_file(tmp_path / f"{stem}.beats")
        np.testing.assert_allclose(beats.beat_times, track.beat_times, atol=1e-6)
        assert np.array_equal(beats.beat_positions, track.beat_positions)

        labels = tmp_path / f"{stem}.labels.json"
        if track.bpm is None:
            assert not labels.exists()
            continue
        grid = read_label_json(labels)
        assert grid.file_name == f"{stem}.wav"
        assert grid.bpm == track.bpm and grid.beats_per_bar == track.beats_per_bar
        assert grid.duration_s == pytest.approx(duration, abs=1e-6)
        assert grid.downbeat_offset_s == pytest.approx(track.downbeat_times()[0], abs=1e-6)
        # the grid holds every annotated beat (with its position), and beyond the
        # first annotated beat it holds nothing else
        expanded = label_grid_to_annotation(grid)
        nearest = np.abs(expanded.beat_times[:, None] - beats.beat_times[None, :]).argmin(axis=0)
        np.testing.assert_allclose(expanded.beat_times[nearest], beats.beat_times, atol=1e-3)
        assert np.array_equal(expanded.beat_positions[nearest], beats.beat_positions)
        assert np.sum(expanded.beat_times >= beats.beat_times[0] - 1e-3) == len(beats.beat_times)


# --------------------------------------------------------------------------- extra styles


def test_extra_styles_are_dealt_only_when_asked_for():
    assert not set(EXTRA_STYLES) & set(STYLES) and ALL_STYLES == STYLES + EXTRA_STYLES
    # the default demo never changes: None deals the demo's styles
    assert [track_style(i, 3) for i in range(40)] == [track_style(i, 3, STYLES) for i in range(40)]
    dealt = [track_style(i, 3, ALL_STYLES) for i in range(2 * len(ALL_STYLES))]
    assert Counter(dealt) == Counter({s: 2 for s in ALL_STYLES})
    weighted = Counter(track_style(i, 3, ["metal", "metal", "piano_solo"]) for i in range(30))
    assert weighted == Counter({"metal": 20, "piano_solo": 10})
    with pytest.raises(ValueError, match="unknown synth styles"):
        track_style(0, 0, ["polka"])
    with pytest.raises(ValueError, match="unknown synth styles"):
        synthesize_track(0, 0, 6.0, SR, styles=[])


def test_a_track_keeps_its_audio_under_a_style_list_that_keeps_its_style():
    index = _indices({"rock"})[0]
    again = synthesize_track(index, 0, 6.0, SR, styles=["rock"])
    assert np.array_equal(again.audio, _track(index).audio)


@pytest.mark.parametrize("style", EXTRA_STYLES)
def test_extra_styles_render_valid_tracks(style):
    track = synthesize_track(1, 0, 10.0, SR, styles=[style])
    assert track.style == style
    assert np.all(np.isfinite(track.audio)) and 0.1 < np.max(np.abs(track.audio)) <= 1.0
    assert len(track.beat_times) >= 5 and np.all(np.diff(track.beat_times) > 0)
    if style in ("orchestral", "piano_solo", "choral"):
        assert not track.has_drums
    if style in ("extreme_metal", "breakbeat", "afro"):
        assert track.has_drums


def test_extreme_metal_plays_fast_and_dense():
    tracks = [synthesize_track(i, 0, 8.0, SR, styles=["extreme_metal"]) for i in range(3)]
    bpms = [60.0 / np.median(np.diff(t.beat_times)) for t in tracks]
    assert min(bpms) >= 120, bpms


@pytest.mark.parametrize("style", ["orchestral", "piano_solo", "choral"])
def test_legato_styles_still_sound_on_most_beats(style):
    """Drumless extra styles: some tracks mark only the bars (a chord per bar, legato),
    but over several tracks most beats carry an onset, in time, stronger than between."""
    results = [_onset_alignment(synthesize_track(i, 0, 12.0, SR, styles=[style])) for i in range(5)]
    within, offset, contrast = map(np.array, zip(*results))
    assert np.median(within) >= 0.6, within.round(2)
    assert np.all(np.abs(offset) < 0.04), offset.round(3)
    assert np.median(contrast) > 1.1, contrast.round(2)
