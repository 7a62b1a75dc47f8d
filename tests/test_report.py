"""Tests for beatgrid.report (data, figures, html, sections, build): the self-contained HTML report
renders with its tables and figures.

The rendering test opens the report in headless Chromium (Debian package ``chromium``)
and is skipped, saying so, when no browser is installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from beatgrid import evaluation as ev
from beatgrid import report

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str | None:
    explicit = os.environ.get("BEATGRID_CHROMIUM")
    if explicit:
        return explicit
    return next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)


def _write(folder: Path, track_id: str, times, positions=None, grid=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cols = [times] if positions is None else [times, positions]
    (folder / f"{track_id}.beats").write_text("".join("\t".join(f"{c[i]:.6g}" for c in cols) + "\n" for i in range(len(times))))
    if grid is not None:
        (folder / f"{track_id}.json").write_text(json.dumps(grid))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small evaluated run: 10 tracks in 2 datasets x 3 splits, 4 methods (one with 2 variants)."""
    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(3)
    rows, refs = [], {}
    splits = ["test"] * 5 + ["val"] * 3 + ["train"] * 2
    for i, split in enumerate(splits):
        track_id, dataset = f"track_{i:02d}", ("demo" if i % 3 else "ballroom")
        bpm = float(rng.uniform(80, 170))
        period = 60.0 / bpm
        beats = np.arange(0.2, 20.0, period)
        positions = np.arange(beats.size) % 4 + 1
        rows.append({"track_id": track_id, "dataset": dataset, "split": split, "has_downbeats": dataset == "demo",
                     "shard": 0, "duration_s": 20.0})  # fmt: skip
        refs[track_id] = ev.Reference(beats, beats[::4] if dataset == "demo" else None)
        wrong_tempo = i in (1, 6)
        grid_bpm = bpm * (2 if wrong_tempo else 1)
        grid_beats = np.arange(0.2, 20.0, 60.0 / grid_bpm) + rng.normal(0, 0.004)
        _write(root / "crnn_grid", track_id, grid_beats, np.arange(grid_beats.size) % 4 + 1,
               {"bpm": grid_bpm, "downbeatOffset": float(grid_beats[0]), "confidence": 0.3 if wrong_tempo else 0.9,
                "beatsPerBar": 4})  # fmt: skip
        for name, noise in (("crnn_peaks@peak_threshold=0.3", 0.03), ("crnn_peaks@peak_threshold=0.5", 0.012)):
            keep = rng.random(beats.size) > 0.1 * (i % 3)
            _write(root / name, track_id, np.sort(beats[keep] + rng.normal(0, noise, keep.sum())), positions[keep])
        _write(root / "librosa", track_id, beats[::2] + 0.01 if i % 2 else beats + 0.02)
    tracks = pd.DataFrame(rows)
    methods = {m: root / m for m in ("crnn_grid", "crnn_peaks@peak_threshold=0.3", "crnn_peaks@peak_threshold=0.5", "librosa")}
    per_track = ev.evaluate_predictions(tracks, refs, methods, trim_seconds=5.0)
    summary = ev.summarize(per_track)
    histories = {}
    for model in ("crnn", "ltm"):
        epochs = np.arange(1, 11)
        history = pd.DataFrame({"epoch": epochs, "train_loss": 1 / epochs, "val_loss": 1.2 / epochs + 0.05,
                                "val_beat_f": 1 - 0.8 / epochs, "val_downbeat_f": 0.9 - 0.8 / epochs,
                                "lr": 1e-3 * np.cos(epochs / 7), "seconds": 3.0, "frames_per_s": 5e4})  # fmt: skip
        history.to_csv(root / f"{model}.csv", index=False)
        histories[model] = root / f"{model}.csv"
    histories["missing_model"] = None
    return {"root": root, "tracks": tracks, "refs": refs, "methods": methods, "per_track": per_track,
            "summary": summary, "histories": histories}  # fmt: skip


def _examples(run, n_best=1, n_worst=1):
    h5py = pytest.importorskip("h5py")
    root = run["root"]
    selected = report.select_examples(run["per_track"], "crnn_grid", n_best=n_best, n_worst=n_worst)
    store, act_store = root / "mels", root / "activations"
    store.mkdir(exist_ok=True)
    act_store.mkdir(exist_ok=True)
    with h5py.File(store / "000.h5", "w") as h5, h5py.File(act_store / "000.h5", "w") as h5_act:
        h5.attrs["fps"] = h5_act.attrs["fps"] = 50.0
        for track_id in run["tracks"]["track_id"]:
            h5[f"tracks/{track_id}/mel"] = np.random.default_rng(0).random((1000, 32)).astype(np.float16)
            activations = np.zeros((1000, 2), dtype=np.float32)
            frames = np.round(run["refs"][track_id].beat_times * 50).astype(int)
            activations[frames, 0] = 0.9
            activations[frames[::4], 1] = 0.8
            h5_act[f"tracks/{track_id}/activations"] = activations
    return report.collect_examples(
        selected, run["tracks"], run["refs"], {"crnn_grid": run["methods"]["crnn_grid"], "librosa": run["methods"]["librosa"]},
        mel_store=store, activation_store={"000": act_store / "000.h5"},
    )  # fmt: skip


def test_select_examples_worst_and_best(run):
    per_track = run["per_track"]
    picked = report.select_examples(per_track, "crnn_grid", n_best=2, n_worst=2)
    test = per_track[(per_track["method"] == "crnn_grid") & (per_track["split"] == "test")]
    assert [p["label"] for p in picked] == ["worst", "worst", "best", "best"]
    assert picked[0]["score"] == pytest.approx(test["beat_f"].min())
    assert picked[2]["score"] == pytest.approx(test["beat_f"].max())
    assert len({p["track_id"] for p in picked}) == 4
    assert {p["track_id"] for p in picked} <= set(test["track_id"])


def test_collect_examples_reads_stores_and_predictions(run):
    examples = _examples(run)
    assert len(examples) == 2
    first = examples[0]
    assert first["mel"].shape == (1000, 32) and first["activations"].shape == (1000, 2)
    assert first["fps"] == 50.0
    assert set(first["predictions"]) == {"crnn_grid", "librosa"}
    times, positions = first["predictions"]["crnn_grid"]
    assert positions is not None and times.size == positions.size


def test_flag_tracks_low_confidence(run):
    flagged = report.flag_tracks(run["per_track"], confidence_threshold=0.5)
    assert set(flagged["track_id"]) == {"track_01", "track_06"}
    assert (flagged["method"] == "crnn_grid").all()
    assert flagged["grid_confidence"].is_monotonic_increasing


def test_package_versions_and_revision():
    versions = report.package_versions()
    for name in ("python", "numpy", "torch", "librosa", "mir_eval", "h5py", "pandas", "snakemake"):
        assert name in versions
    assert re.match(r"\d+\.\d+", versions["numpy"])
    assert report.git_revision("/") == "unknown" or report.git_revision("/")


def test_figures_written_with_fixed_names(run, tmp_path):
    examples = _examples(run)
    paths = report.write_report_figures(tmp_path, per_track=run["per_track"], summary=run["summary"],
                                        history_csvs=run["histories"], examples=examples)  # fmt: skip
    assert set(report.FIGURE_NAMES) <= set(paths)
    assert sum(name.startswith("track_") for name in paths) == len(examples)
    for path in paths.values():
        assert path.parent == tmp_path and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_from_empty_results(tmp_path):
    per_track = pd.DataFrame(columns=["method", "track_id", "dataset", "split"])
    paths = report.write_report_figures(tmp_path, per_track=per_track, summary=None, history_csvs={})
    assert all(p.is_file() for p in paths.values())


@pytest.fixture(scope="module")
def built_report(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    config = {"datasets": {"demo": {"format": "synth", "n_tracks": 10}}, "evaluation": {"trim_seconds": 5}}
    path = report.build_report(
        out, per_track=run["per_track"], summary=run["summary"], tracks=run["tracks"], config=config,
        history_csvs=run["histories"], examples=_examples(run), package_versions=report.package_versions(),
        git_revision="abc123def456",
    )  # fmt: skip
    return path


def test_report_is_self_contained(built_report, run):
    page = built_report.read_text()
    assert built_report.name == "index.html"
    # no network: no external scripts, styles, images or links
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(report.FIGURE_NAMES) + 2
    assert all(base64.b64decode(img)[:4] == b"\x89PNG" for img in images)
    # the test split comes first, the config and revision are there
    assert page.index("Summary — test split") < page.index("<h3>val</h3>") < page.index("<h3>train</h3>")
    assert "abc123def456" in page and "trim_seconds: 5" in page and "mir_eval" in page
    # the chosen variant is reported under its base name, and the variants table lists both
    assert "crnn_peaks@peak_threshold=0.5" in page and "crnn_peaks@peak_threshold=0.3" in page
    assert (built_report.parent / "flagged_tracks.csv").is_file()
    # provenance lists the split of every track
    splits = page[page.index("<details id='splits'>"):]
    for track_id in run["tracks"]["track_id"]:
        assert track_id in splits
    assert len(list((built_report.parent / "figures").glob("*.png"))) == len(images)


def test_write_report_from_stage_files(run, tmp_path):
    h5py = pytest.importorskip("h5py")
    tracks = run["tracks"].assign(shard="000")
    tracks.to_csv(tmp_path / "tracks.csv", index=False)
    run["per_track"].to_csv(tmp_path / "per_track.csv", index=False)
    run["summary"].to_csv(tmp_path / "summary.csv", index=False)
    with h5py.File(tmp_path / "targets.h5", "w") as h5:
        for track_id, ref in run["refs"].items():
            h5[f"tracks/{track_id}/beat_times"] = ref.beat_times
    with h5py.File(tmp_path / "000.h5", "w") as h5:
        h5.attrs["fps"] = 50.0
        for track_id in tracks["track_id"]:
            h5[f"tracks/{track_id}/mel"] = np.zeros((1000, 16), dtype=np.float16)
    path = report.write_report(
        tmp_path / "report", per_track_csv=tmp_path / "per_track.csv", summary_csv=tmp_path / "summary.csv",
        tracks_csv=tmp_path / "tracks.csv", config={"evaluation": {"trim_seconds": 5}},
        history_csvs=run["histories"], prediction_dirs=run["methods"].values(), mel_paths=[tmp_path / "000.h5"],
        target_paths=[tmp_path / "targets.h5"],
    )  # fmt: skip
    panels = sorted((path.parent / "figures").glob("track_*.png"))
    assert len(panels) == 4  # 2 worst + 2 best of crnn_grid (the first non-reference method) on test
    test_ids = set(tracks.loc[tracks["split"] == "test", "track_id"])
    assert all(any(track_id in p.name for track_id in test_ids) for p in panels)
    assert path.read_text().count("data:image/png;base64,") == len(report.FIGURE_NAMES) + 4


def test_report_renders_in_headless_chromium(built_report, tmp_path, run):
    browser = _chromium()
    if browser is None:
        pytest.skip("no headless browser: install Debian's `chromium` (apt-get install chromium) to render the report")
    args = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    url = built_report.resolve().as_uri()
    dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html_dom = dom.stdout
    # tables: one row per summary row of the test split (single-dataset 'all' rows dropped) in the first table
    first_table = html_dom[html_dom.index("<table") : html_dom.index("</table>")]
    test_rows = run["summary"][run["summary"]["split"] == "test"]
    assert first_table.count("<tr") == 1 + len(test_rows)
    for method in ("crnn_grid", "crnn_peaks", "librosa"):
        assert f">{method}" in first_table
    assert html_dom.count('src="data:image/png;base64,') == len(report.FIGURE_NAMES) + 2

    screenshot = tmp_path / "report.png"
    shot = subprocess.run([*args, "--hide-scrollbars", f"--screenshot={screenshot}", "--window-size=1280,2000", url],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    # non-blank: a large share of the first screen is not background white, and it has dark text
    not_white = (pixels.mean(axis=2) < 0.95).mean()
    assert not_white > 0.05, f"screenshot looks blank ({not_white:.3f} non-white)"
    assert (pixels.mean(axis=2) < 0.3).mean() > 0.002
    keep = os.environ.get("BEATGRID_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(screenshot, keep)


def test_adapt_report_puts_pretrained_adapted_and_librosa_side_by_side(tmp_path):
    from beatgrid.adapt import adaptation_gain, learning_curve_table, summarize_cv
    from beatgrid.report import write_adapt_report

    rng = np.random.default_rng(0)
    rows = []
    for method in ("crnn_dbn (pretrained)", "crnn_dbn (adapted, 5-fold CV)", "librosa"):
        for i in range(6):
            rows.append({"method": method, "track_id": f"t{i}", "dataset": "gtzan" if i < 4 else "jtd", "split": "cv",
                         "beat_f": rng.uniform(0.3, 1), "downbeat_f": rng.uniform(0, 1), "tempo_acc1": 1.0})
    per_track = pd.DataFrame(rows)
    per_track.to_csv(tmp_path / "per_track.csv", index=False)
    summarize_cv(per_track).to_csv(tmp_path / "summary.csv", index=False)
    curve = learning_curve_table({0: per_track[per_track["method"].str.contains("pretrained")],
                                  4: per_track[per_track["method"].str.contains("CV")]})
    curve.to_csv(tmp_path / "learning_curve.csv", index=False)
    html = write_adapt_report(tmp_path, tmp_path / "report").read_text()
    assert "What adaptation changed" not in html  # no gain.csv (a run from before it): no such section
    adaptation_gain(per_track, 5).to_csv(tmp_path / "gain.csv", index=False)
    html = write_adapt_report(tmp_path, tmp_path / "report").read_text()
    for text in ("crnn_dbn (pretrained)", "crnn_dbn (adapted, 5-fold CV)", "librosa", "gtzan", "jtd", "Learning curve",
                 "What adaptation changed", "beat_f_gain_ci_low", "beat_f_ci_high"):
        assert text in html, text
    assert html.count("<img") == 2 and (tmp_path / "report" / "figures" / "learning_curve.png").is_file()


def test_the_learning_curve_figure_bands_each_mean_with_its_interval():
    from beatgrid.adapt import learning_curve_table
    from beatgrid.report.figures import figure_learning_curve

    per_track = pd.DataFrame({"method": ["m (pretrained)"] * 4, "beat_f": [0.2, 0.4, 0.6, 0.8],
                              "downbeat_f": [0.1, 0.2, 0.3, 0.4], "tempo_acc1": [0.0, 1.0, 1.0, 0.0]})
    table = learning_curve_table({0: per_track, 5: per_track.assign(method="m (adapted, 5-fold CV)")})
    beat_axes = figure_learning_curve(table).axes[0]
    (band,) = beat_axes.collections
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert low == pytest.approx(table["beat_f_ci_low"].min()) and high == pytest.approx(table["beat_f_ci_high"].max())
    old = table.drop(columns=[c for c in table if "_ci_" in c])  # a curve written before the intervals
    assert not figure_learning_curve(old).axes[0].collections


def test_f_distribution_puts_each_method_beside_its_adapted_self_and_the_legend_outside():
    from beatgrid.report.figures import figure_f_distribution

    rng = np.random.default_rng(0)
    order = ["crnn_peaks (pretrained)", "crnn_dbn (pretrained)", "crnn_peaks (adapted, 5-fold CV)",
             "crnn_dbn (adapted, 5-fold CV)", "librosa"]  # the summary's order: pretrained first
    per_track = pd.DataFrame([
        {"method": method, "track_id": f"t{i}", "dataset": ("gtzan", "jtd")[i % 2], "split": "cv",
         "beat_f": rng.uniform(0, 1), "downbeat_f": rng.uniform(0, 1)}
        for method in order for i in range(4)])
    fig = figure_f_distribution(per_track)
    beat_axes, downbeat_axes = fig.axes[:2]
    labels = [tick.get_text() for tick in beat_axes.get_xticklabels()]
    assert labels == ["crnn_peaks (pretrained)", "crnn_peaks (adapted, 5-fold CV)", "crnn_dbn (pretrained)",
                      "crnn_dbn (adapted, 5-fold CV)", "librosa"]
    legend = downbeat_axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["gtzan", "jtd"]
    fig.canvas.draw()
    legend_box = legend.get_window_extent()
    assert legend_box.x0 >= downbeat_axes.get_window_extent().x1  # beside the axes, over no score


def test_inputs_left_out_by_the_index_and_by_shard_jobs_are_listed(run, tmp_path):
    from beatgrid.data.store import atomic_h5, record_dropped

    rejected = tmp_path / "rejected.csv"
    pd.DataFrame([{"dataset": "mine", "audio_path": "mine/nan.wav", "annotation_path": "mine/nan.beats",
                   "reason": "audio contains non-finite samples (NaN or inf)"}]).to_csv(rejected, index=False)
    with atomic_h5(tmp_path / "001.h5") as h5:
        record_dropped(h5, {"mine_odd": "track 'mine_odd': cannot compute the log-mel of mine/odd.wav"})
    left_out = report.left_out_inputs(rejected, [tmp_path / "001.h5"])
    assert left_out.to_dict("records") == [
        {"stage": "index", "file": "mine/nan.wav", "reason": "audio contains non-finite samples (NaN or inf)"},
        {"stage": "shard job", "file": "mine_odd",
         "reason": f"{tmp_path / '001.h5'}: track 'mine_odd': cannot compute the log-mel of mine/odd.wav"},
    ]
    page = report.build_report(
        tmp_path / "report", per_track=run["per_track"], summary=run["summary"], tracks=run["tracks"], config={},
        history_csvs=run["histories"], left_out=left_out,
    ).read_text()
    assert "Inputs left out" in page and "mine/nan.wav" in page and "mine_odd" in page


def test_tables_bold_the_best_value_per_group_and_escape_text():
    from beatgrid.report.html import html_table

    rows = pd.DataFrame([
        {"dataset": "a", "method": "m1", "variant": "m1@peak_threshold=0.3", "beat_f": 0.5, "grid_phase_error_ms": 9.0},
        {"dataset": "a", "method": "<m2>", "variant": "<m2>", "beat_f": 0.7, "grid_phase_error_ms": 12.0},
        {"dataset": "b", "method": "m1", "variant": "m1", "beat_f": 0.2, "grid_phase_error_ms": float("nan")},
    ])  # fmt: skip
    table = str(html_table(rows, ["dataset", "method", "beat_f", "grid_phase_error_ms"], best_within="dataset",
                           group_by="dataset"))  # fmt: skip
    assert '<td class="best">0.700</td>' in table  # higher F is better
    assert '<td class="best">9.0</td>' in table  # lower error is better
    assert "0.200</td>" in table and 'class="best">0.200' not in table  # a group of one has no best
    assert '<td class="na">–</td>' in table
    assert "&lt;m2&gt;" in table and "<m2>" not in table
    assert '<span class="variant">@peak_threshold=0.3</span>' in table
    assert table.count('class="group-start"') == 1
