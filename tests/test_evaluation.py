"""Tests for beatgrid.evaluation: hand-checked metric cases, readers, aggregation, variant selection."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from beatgrid import evaluation as ev

# 120 BPM for 30 s, 4/4: beats every 0.5 s, downbeats every 2 s.
REF = np.arange(0.25, 30.0, 0.5)
REF_DOWN = REF[::4]


def test_perfect_prediction_scores_one_everywhere():
    scores = ev.evaluate_track(REF, REF_DOWN, REF, REF_DOWN)
    for name in ("beat_f", "beat_cemgil", "beat_goto", "beat_pscore", "beat_cmlc", "beat_cmlt", "beat_amlc",
                 "beat_amlt", "downbeat_f", "tempo_acc1", "tempo_acc2"):  # fmt: skip
        assert scores[name] == pytest.approx(1.0), name
    assert scores["ref_bpm"] == pytest.approx(120.0)
    assert scores["est_bpm"] == pytest.approx(120.0)


def test_shift_by_100ms_is_outside_the_70ms_window():
    scores = ev.evaluate_track(REF, REF_DOWN, REF + 0.100, REF_DOWN + 0.100)
    assert scores["beat_f"] == 0.0
    assert scores["downbeat_f"] == 0.0
    assert scores["beat_cmlt"] == 0.0
    # tempo is still right
    assert scores["tempo_acc1"] == 1.0
    # 60 ms stays inside the window
    assert ev.evaluate_track(REF, None, REF + 0.060, None)["beat_f"] == pytest.approx(1.0)


def test_double_tempo_is_wrong_metrical_level_but_any_level_correct():
    double = np.arange(0.25, 30.0, 0.25)
    scores = ev.evaluate_track(REF, None, double, None)
    assert scores["beat_cmlt"] < 0.1
    assert scores["beat_amlt"] > 0.95
    assert scores["beat_f"] == pytest.approx(2 / 3, abs=0.01)  # precision 1/2, recall 1
    assert scores["tempo_acc1"] == 0.0
    assert scores["tempo_acc2"] == 1.0


def test_off_beat_is_any_level():
    scores = ev.evaluate_track(REF, None, REF + 0.25, None)
    assert scores["beat_f"] == 0.0
    assert scores["beat_amlt"] > 0.95


@pytest.mark.parametrize(
    ("est", "acc1", "acc2"),
    [
        (120.0, 1, 1),
        (124.7, 1, 1),  # +3.9 %
        (125.5, 0, 0),  # +4.6 %
        (115.5, 1, 1),
        (240.0, 0, 1),
        (360.0, 0, 1),  # x3
        (40.0, 0, 1),  # x1/3
        (60.5, 0, 1),  # x1/2 within 4 %
        (180.0, 0, 0),  # x3/2 is not accepted
        (80.0, 0, 0),  # x2/3 is not accepted
        (math.nan, 0, 0),  # no estimate
    ],
)
def test_tempo_accuracy(est, acc1, acc2):
    assert ev.tempo_accuracy(120.0, est) == (acc1, acc2)


def test_tempo_accuracy_without_reference_is_nan():
    acc1, acc2 = ev.tempo_accuracy(math.nan, 120.0)
    assert math.isnan(acc1) and math.isnan(acc2)


def test_tempo_uses_label_bpm_and_grid_bpm_over_beats():
    # beats say 120 BPM, but the label and the grid state the tempo exactly
    scores = ev.evaluate_track(REF, None, REF, None, ref_bpm=128.37, grid={"bpm": 128.5, "downbeatOffset": 0.25})
    assert scores["ref_bpm"] == 128.37
    assert scores["est_bpm"] == 128.5
    # without a grid the median inter-beat interval gives the tempo
    jittered = REF + np.random.default_rng(0).normal(0, 0.005, REF.size)
    assert ev.evaluate_track(REF, None, np.sort(jittered), None)["est_bpm"] == pytest.approx(120.0, rel=0.02)


def test_track_without_downbeat_annotation_or_estimate_is_nan():
    assert math.isnan(ev.evaluate_track(REF, None, REF, REF_DOWN)["downbeat_f"])
    assert math.isnan(ev.evaluate_track(REF, REF_DOWN, REF, None)["downbeat_f"])
    # a method that estimates downbeats but finds none scores 0, not NaN
    assert ev.evaluate_track(REF, REF_DOWN, REF, np.array([]))["downbeat_f"] == 0.0


def test_trimming_ignores_the_start():
    # wrong for the first 10 s, right afterwards
    est = np.concatenate([REF[REF < 10] + 0.2, REF[REF >= 10]])
    assert ev.evaluate_track(REF, None, est, None, trim_seconds=10.0)["beat_f"] == pytest.approx(1.0)
    assert ev.evaluate_track(REF, None, est, None, trim_seconds=5.0)["beat_f"] < 0.9
    untrimmed = ev.evaluate_track(REF, None, est, None, trim_seconds=0.0)["beat_f"]
    # 20 of 60 beats wrong: F = 40/60
    assert untrimmed == pytest.approx(40 / 60)
    # a reference shorter than the trim cannot be scored
    assert math.isnan(ev.evaluate_track(REF[REF < 4], None, REF, None, trim_seconds=5.0)["beat_f"])
    with pytest.raises(ValueError):
        ev.evaluate_track(REF, None, REF, None, trim_seconds=-1)


def test_a_clip_of_a_few_beats_scores_without_warnings():
    import warnings

    beats = np.array([0.5, 1.18, 1.86, 2.54])  # mir_eval's Goto takes the std of an empty slice here
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = ev.evaluate_track(beats, None, beats, None, trim_seconds=0)
    assert scores["beat_f"] == 1.0


def test_unsorted_estimate_is_sorted_and_nan_rejected():
    shuffled = np.random.default_rng(1).permutation(REF)
    assert ev.evaluate_track(REF, None, shuffled, None)["beat_f"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="NaN"):
        ev.evaluate_track(REF, None, np.array([1.0, np.nan]), None)


def test_grid_phase_error_definition():
    # grid 12 ms late, lines only every other annotated beat would still be found by the lattice
    grid = {"bpm": 120.0, "downbeatOffset": 0.25 + 0.012 + 8 * 0.5, "confidence": 0.8, "beatsPerBar": 4}
    scores = ev.evaluate_track(REF, None, REF + 0.012, None, grid=grid)
    assert scores["grid_phase_error_ms"] == pytest.approx(12.0)
    assert scores["grid_phase_bias_ms"] == pytest.approx(12.0)
    assert scores["grid_max_error_ms"] == pytest.approx(12.0)
    assert scores["grid_confidence"] == 0.8
    assert scores["grid_beats_per_bar"] == 4
    # a grid 0.1 % slow drifts: error grows linearly, so the max exceeds the median
    slow = ev.evaluate_track(REF, None, REF, None, grid={"bpm": 119.88, "downbeatOffset": 0.25})
    assert slow["grid_max_error_ms"] > slow["grid_phase_error_ms"] > 1.0
    # early grid gives a negative bias
    early = ev.evaluate_track(REF, None, REF, None, grid={"bpm": 120.0, "downbeatOffset": 0.24})
    assert early["grid_phase_bias_ms"] == pytest.approx(-10.0)


def test_grid_phase_errors_wrap_to_nearest_line():
    errors = ev.grid_phase_errors(np.array([0.0, 0.49, 0.74, 1.01]), bpm=120.0, offset_s=0.0)
    np.testing.assert_allclose(errors, [0.0, 0.01, -0.24, -0.01], atol=1e-12)


def test_no_grid_means_nan_grid_metrics():
    scores = ev.evaluate_track(REF, None, REF, None, grid={"bpm": 120.0})  # tempo only, no downbeatOffset
    assert math.isnan(scores["grid_phase_error_ms"])
    assert scores["est_bpm"] == 120.0


# ---------------------------------------------------------------------------
# readers


def test_references_from_targets(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "000.h5"
    with h5py.File(path, "w") as h5:
        for track_id in ("a", "b"):
            group = h5.create_group(f"tracks/{track_id}")
            group["beat_times"] = REF
            group["downbeat_times"] = REF_DOWN
    tracks = pd.DataFrame({"track_id": ["a", "b"], "has_downbeats": [True, False], "bpm": [120.5, np.nan]})
    refs = ev.references_from_targets([path], tracks)
    np.testing.assert_allclose(refs["a"].beat_times, REF)
    np.testing.assert_allclose(refs["a"].downbeat_times, REF_DOWN)
    assert refs["a"].bpm == 120.5
    assert refs["b"].downbeat_times is None and refs["b"].bpm is None


# ---------------------------------------------------------------------------
# many tracks: evaluate_predictions, summarize, variants


def _write_prediction(folder, track_id, times, positions=None, grid=None):
    folder.mkdir(parents=True, exist_ok=True)
    if positions is None:
        text = "".join(f"{t:.6f}\n" for t in times)
    else:
        text = "".join(f"{t:.6f}\t{p}\n" for t, p in zip(times, positions))
    (folder / f"{track_id}.beats").write_text(text)
    if grid is not None:
        (folder / f"{track_id}.json").write_text(json.dumps(grid))


@pytest.fixture()
def fixture_run(tmp_path):
    """Six tracks in two datasets and three splits, three methods (one with two variants)."""
    rng = np.random.default_rng(0)
    rows, refs = [], {}
    layout = [("d1", "test"), ("d1", "test"), ("d2", "test"), ("d1", "val"), ("d2", "val"), ("d1", "train")]
    for i, (dataset, split) in enumerate(layout):
        track_id = f"t{i}"
        period = 60.0 / rng.uniform(90, 150)
        beats = np.arange(0.3, 25.0, period)
        has_down = dataset == "d1"
        rows.append({"track_id": track_id, "dataset": dataset, "split": split, "has_downbeats": has_down})
        refs[track_id] = ev.Reference(beats, beats[::4] if has_down else None)
        positions = (np.arange(beats.size) % 4) + 1
        # grid: right on test/val tracks except t1 (offset by 30 ms)
        shift = 0.03 if track_id == "t1" else 0.0
        _write_prediction(tmp_path / "grid", track_id, beats + shift, positions,
                          {"bpm": 60.0 / period, "downbeatOffset": 0.3 + shift, "confidence": 0.9})  # fmt: skip
        # peaks@a is good on val, peaks@b is good on test only (selection must not look at test)
        good = beats + rng.normal(0, 0.01, beats.size)
        bad = beats + 0.15
        _write_prediction(tmp_path / "peaks@a", track_id, np.sort(good if split != "test" else bad), positions)
        _write_prediction(tmp_path / "peaks@b", track_id, np.sort(bad if split != "test" else good), positions)
        _write_prediction(tmp_path / "librosa", track_id, beats[::2])  # half tempo, no downbeats
    tracks = pd.DataFrame(rows)
    methods = {m: tmp_path / m for m in ("grid", "peaks@a", "peaks@b", "librosa")}
    per_track = ev.evaluate_predictions(tracks, refs, methods, trim_seconds=5.0)
    return tracks, refs, methods, per_track


def test_evaluate_predictions_rows(fixture_run):
    tracks, _, methods, per_track = fixture_run
    assert len(per_track) == len(tracks) * len(methods)
    assert list(per_track.columns[:4]) == ["method", "track_id", "dataset", "split"]
    librosa = per_track[per_track["method"] == "librosa"]
    assert librosa["downbeat_f"].isna().all()  # no downbeat estimate
    assert (librosa["tempo_acc1"] == 0).all() and (librosa["tempo_acc2"] == 1).all()
    grid = per_track[per_track["method"] == "grid"].set_index("track_id")
    assert grid.loc["t0", "grid_phase_error_ms"] == pytest.approx(0.0, abs=1e-6)
    assert grid.loc["t1", "grid_phase_error_ms"] == pytest.approx(30.0)
    assert np.isnan(grid.loc["t2", "downbeat_f"])  # d2 has no downbeat annotation


def test_evaluate_predictions_warns_about_tracks_shorter_than_trim(fixture_run):
    tracks, refs, methods, _ = fixture_run
    short = {**refs, "t0": ev.Reference(np.array([0.5, 1.0, 1.5]), None)}
    with pytest.warns(UserWarning, match="1 track.*t0"):
        per_track = ev.evaluate_predictions(tracks, short, {"grid": methods["grid"]}, trim_seconds=5.0)
    assert np.isnan(per_track.set_index("track_id").loc["t0", "beat_f"])


def test_evaluate_predictions_missing_file_names_it(fixture_run, tmp_path):
    tracks, refs, _, _ = fixture_run
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="t0.beats"):
        ev.evaluate_predictions(tracks, refs, {"x": tmp_path / "empty"})
    with pytest.raises(KeyError, match="t5"):
        ev.evaluate_predictions(tracks, {k: v for k, v in refs.items() if k != "t5"}, {"x": tmp_path / "grid"})


def test_variant_selection_uses_val_not_test(fixture_run):
    _, _, _, per_track = fixture_run
    chosen = ev.select_best_variants(per_track)
    assert chosen == {"grid": "grid", "peaks": "peaks@a", "librosa": "librosa"}
    # on test, peaks@b is better: choosing by test would give the other answer
    test = per_track[per_track["split"] == "test"].groupby("method")["beat_f"].mean()
    assert test["peaks@b"] > test["peaks@a"]


def test_variant_selection_without_val_warns_and_keeps_first(fixture_run):
    _, _, _, per_track = fixture_run
    with pytest.warns(UserWarning, match="peaks"):
        chosen = ev.select_best_variants(per_track[per_track["split"] != "val"])
    assert chosen["peaks"] == "peaks@a"


def test_summary_equals_mean_of_per_track_rows(fixture_run):
    _, _, _, per_track = fixture_run
    summary = ev.summarize(per_track)
    assert list(summary.columns) == ev.SUMMARY_COLUMNS
    assert list(summary["split"].unique()) == ["test", "val", "train"]
    for record in summary.to_dict("records"):
        rows = per_track[(per_track["method"] == record["variant"]) & (per_track["split"] == record["split"])]
        if record["dataset"] != "all":
            rows = rows[rows["dataset"] == record["dataset"]]
        assert record["n_tracks"] == len(rows)
        for col in ("beat_f", "beat_cmlt", "beat_amlt", "tempo_acc1", "tempo_acc2", "downbeat_f"):
            values = [v for v in rows[col] if not math.isnan(v)]
            expected = sum(values) / len(values) if values else math.nan
            assert record[col] == pytest.approx(expected, nan_ok=True), (record["method"], col)
        errors = sorted(v for v in rows["grid_phase_error_ms"] if not math.isnan(v))
        expected_median = (
            math.nan if not errors else (errors[len(errors) // 2] + errors[(len(errors) - 1) // 2]) / 2
        )
        assert record["grid_phase_error_ms"] == pytest.approx(expected_median, nan_ok=True)


def test_summary_reports_chosen_variant_under_base_name(fixture_run):
    _, _, _, per_track = fixture_run
    summary = ev.summarize(per_track)
    peaks = summary[summary["method"] == "peaks"]
    assert set(peaks["variant"]) == {"peaks@a"}
    assert not summary["method"].str.contains("@").any()
    # downbeat mean excludes d2 (no annotation) instead of counting it as 0
    row = summary[(summary["method"] == "grid") & (summary["split"] == "test") & (summary["dataset"] == "all")].iloc[0]
    assert row["n_tracks"] == 3 and row["n_downbeat_tracks"] == 2
    assert row["downbeat_f"] == pytest.approx(per_track.query("method == 'grid' and track_id in ['t0', 't1']")["downbeat_f"].mean())


def test_summary_markdown(fixture_run):
    _, _, _, per_track = fixture_run
    text = ev.summary_markdown(ev.summarize(per_track))
    assert text.index("### test") < text.index("### val") < text.index("### train")
    test_block = text.split("### val")[0]
    assert "| peaks (peaks@a) | d1 |" in test_block
    assert "| librosa | all |" in test_block
    # the train split holds one dataset: no repeated 'all' rows there, but val has two
    assert "| all |" not in text.split("### train")[1]
    assert "| all |" in text.split("### val")[1].split("### train")[0]
    assert "–" in test_block  # NaN downbeat F of librosa
    # rows grouped by dataset: every method's d1 row before any d2 row
    lines = [line for line in test_block.splitlines() if line.startswith("| ") and "method" not in line]
    datasets = [line.split(" | ")[1] for line in lines]
    assert datasets == sorted(datasets, key=["d1", "d2", "all"].index)


def test_references_from_annotations(tmp_path):
    from beatgrid import annotations

    beats_path = tmp_path / "a.beats"
    annotations.write_beats_file(beats_path, REF, np.arange(REF.size) % 4 + 1)
    label_path = tmp_path / "b.labels.json"
    label_path.write_text(json.dumps({"bpm": 128.37, "duration": 30.0, "downbeatOffset": 0.2}))
    jams_path = tmp_path / "c.jams"
    jams_path.write_text(json.dumps({"annotations": [{"namespace": "beat", "data": [
        {"time": float(t), "duration": 0.0, "value": int(p)} for t, p in zip(REF, np.arange(REF.size) % 4 + 1)]}]}))
    tracks = pd.DataFrame(
        {
            "track_id": ["a", "b", "c"],
            "annotation_path": [str(beats_path), str(label_path), str(jams_path)],
            "annotation_format": ["beats", "label_json", "jams"],
            "has_downbeats": [True, False, True],
            "duration_s": [30.0, 30.0, 30.0],
        }
    )
    refs = ev.references_from_annotations(tracks)
    np.testing.assert_allclose(refs["a"].beat_times, REF, atol=1e-6)
    np.testing.assert_allclose(refs["a"].downbeat_times, REF_DOWN, atol=1e-6)
    assert refs["a"].bpm is None
    assert refs["b"].bpm == pytest.approx(128.37)  # the label's tempo, not one rounded from beats
    assert refs["b"].downbeat_times is None
    assert np.min(np.abs(refs["b"].beat_times - 0.2)) < 1e-9
    np.testing.assert_allclose(np.diff(refs["b"].beat_times), 60 / 128.37)
    np.testing.assert_allclose(refs["c"].beat_times, REF, atol=1e-9)
    np.testing.assert_allclose(refs["c"].downbeat_times, REF_DOWN, atol=1e-6)
    tracks.loc[0, "annotation_format"] = "xml"
    with pytest.raises(ValueError, match="a.beats"):
        ev.references_from_annotations(tracks)


def index_csv(tracks: pd.DataFrame, path) -> None:
    """``tracks`` as a tracks.csv index of one shard (the columns the tests leave out filled in)."""
    from tests.index_table import index_table

    index_table(tracks["track_id"], **tracks.drop(columns="track_id")).to_csv(path, index=False)


def test_evaluate_run_writes_the_stage_files(fixture_run, tmp_path):
    h5py = pytest.importorskip("h5py")
    tracks, refs, methods, per_track = fixture_run
    index_csv(tracks, tmp_path / "tracks.csv")
    with h5py.File(tmp_path / "000.h5", "w") as h5:
        for track_id, ref in refs.items():
            h5[f"tracks/{track_id}/beat_times"] = ref.beat_times
            h5[f"tracks/{track_id}/downbeat_times"] = ref.downbeat_times if ref.downbeat_times is not None else np.zeros(0)
    out = tmp_path / "evaluation"
    got, summary, markdown = ev.evaluate_run(
        tmp_path / "tracks.csv", methods.values(), [tmp_path / "000.h5"], trim_seconds=5.0,
        per_track_csv=out / "per_track.csv", summary_csv=out / "summary.csv", markdown_path=out / "summary.md",
    )  # fmt: skip
    pd.testing.assert_frame_equal(got, per_track, check_dtype=False)
    written = pd.read_csv(out / "per_track.csv")
    assert len(written) == len(per_track) and set(written["method"]) == set(methods)
    assert pd.read_csv(out / "summary.csv")["method"].tolist() == summary["method"].tolist()
    assert (out / "summary.md").read_text() == markdown


def test_evaluate_run_leaves_out_the_tracks_a_shard_job_dropped(fixture_run, tmp_path):
    from beatgrid.data.store import atomic_h5, record_dropped

    tracks, refs, methods, per_track = fixture_run
    index_csv(tracks, tmp_path / "tracks.csv")
    with atomic_h5(tmp_path / "targets.h5") as h5:
        for track_id, ref in refs.items():
            h5[f"tracks/{track_id}/beat_times"] = ref.beat_times
            h5[f"tracks/{track_id}/downbeat_times"] = ref.downbeat_times if ref.downbeat_times is not None else np.zeros(0)
    with atomic_h5(tmp_path / "mels.h5") as h5:  # the mels job could not decode t2: no prediction either
        record_dropped(h5, {"t2": "track 't2': audio contains non-finite samples"})
    for folder in methods.values():
        (folder / "t2.beats").unlink()
    got, _, _ = ev.evaluate_run(tmp_path / "tracks.csv", methods.values(), [tmp_path / "targets.h5"],
                                dropped_from=[tmp_path / "mels.h5"])
    assert set(got["track_id"]) == set(tracks["track_id"]) - {"t2"}
    with pytest.raises(FileNotFoundError, match="t2.beats"):  # without the record, a missing file is an error
        ev.evaluate_run(tmp_path / "tracks.csv", methods.values(), [tmp_path / "targets.h5"])


def test_mean_ci_brackets_the_mean_narrows_with_more_tracks_and_is_seeded():
    rng = np.random.default_rng(3)
    few, many = rng.uniform(0, 1, 10), rng.uniform(0, 1, 400)
    mean_ci = ev.mean_ci
    low, high = mean_ci(few)
    assert low < few.mean() < high
    many_low, many_high = mean_ci(many)
    assert many_high - many_low < (high - low) / 3  # about 1 / sqrt(40) as wide
    assert mean_ci(few) == mean_ci(few) and mean_ci(few, seed=1) != mean_ci(few)
    assert mean_ci([0.4, np.nan, 0.4, 0.4]) == pytest.approx((0.4, 0.4))  # NaN dropped; no spread, no width
    assert all(np.isnan(mean_ci([0.7])))
    with pytest.raises(ValueError, match="level"):
        mean_ci(few, level=1.0)
