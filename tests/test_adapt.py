"""beatgrid.adapt: fine-tuning a CRNN + LTM pair on a user's tracks, and its cross-validated estimate.

The stores are built at the mel level (no audio), so the models stay tiny and fast: the
base pair learns a "style" whose beats sound in the low mel bands, 4/4 at ~120 BPM; the
user's tracks are an unseen style, beats in the high bands, 3/4 at ~160 BPM.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from beatgrid.adapt import (
    GAIN_COLUMNS, KEEP_NORM_STATISTICS_BELOW_TRACKS, AdaptConfig, Adaptation, TrackStores, adapt_tracks,
    adaptation_gain, adaptation_losses, curve_plan, fold_of_tracks, fold_train_ids, gain_lines, keep_norm_statistics,
    learning_curve_table, replay_ids, summarize_cv,
)
from beatgrid.training.crnn import train_crnn
from beatgrid.data.store import atomic_h5, write_track
from beatgrid.features import MelConfig, frame_targets
from beatgrid.training.ltm import train_ltm
from beatgrid.training.stores import TrainingStores
from beatgrid.models import load_model

torch.set_num_threads(1)
N_MELS = 16
FPS = 50.0
N_FRAMES = 600  # 12 s
TINY_CRNN = {"conv_channels": [4], "rnn_hidden": 8, "rnn_layers": 1, "dropout": 0.0, "augment": False,
             "epochs": 6, "batch_size": 4, "crop_frames": 300, "lr": 0.01, "patience": 0, "seed": 0, "device": "cpu"}
TINY_LTM = {"kind": "tcn", "channels": 8, "kernel_size": 3, "n_layers": 3, "input_source": "augment",
            "epochs": 2, "batch_size": 4, "crop_frames": 300, "lr": 0.003, "patience": 0, "seed": 0, "device": "cpu"}


def _track(rng, style: str, index: int):
    if style == "base":
        period, beats_per_bar, bands = 0.5, 4, slice(0, 5)
    else:  # unseen: beats in the high bands, 3/4, faster
        period, beats_per_bar, bands = 0.375, 3, slice(11, 16)
    beats = np.arange(0.1 + 0.03 * (index % 5), N_FRAMES / FPS - 0.05, period)
    downbeats = beats[::beats_per_bar]
    target = frame_targets(beats, downbeats, N_FRAMES, FPS)
    mel = rng.normal(0, 0.3, (N_FRAMES, N_MELS))
    mel[:, bands] += 3.0 * target[:, :1] + 1.5 * target[:, 1:2]  # downbeats louder
    return mel, target, beats, downbeats


def _write_stores(root, styles: dict[str, tuple[str, int]], tracks_per_shard: int = 8) -> TrackStores:
    """Index rows and sharded stores: dataset name -> (style, n_tracks)."""
    rng = np.random.default_rng(0)
    rows = []
    for dataset, (style, count) in styles.items():
        for i in range(count):
            rows.append({"track_id": f"{dataset}_{i:02d}", "dataset": dataset, "style": style, "i": i})
    tracks = pd.DataFrame(rows)
    tracks["shard"] = [f"{k // tracks_per_shard:03d}" for k in range(len(tracks))]
    mel_attrs = {**MelConfig(n_mels=N_MELS, fmax=8000).as_dict(), "fps": FPS}
    (root / "mels").mkdir(parents=True)
    (root / "targets").mkdir(parents=True)
    for shard, members in tracks.groupby("shard"):
        with atomic_h5(root / "mels" / f"{shard}.h5", attrs=mel_attrs) as mels, atomic_h5(
            root / "targets" / f"{shard}.h5", attrs={"fps": FPS, "widen_frames": 1, "widen_value": 0.5}
        ) as targets:
            for row in members.itertuples():
                mel, target, beats, downbeats = _track(rng, row.style, row.i)
                write_track(mels, row.track_id, {"mel": mel.astype(np.float16)})
                write_track(targets, row.track_id, {"beat": target[:, 0], "downbeat": target[:, 1],
                                                    "beat_times": beats, "downbeat_times": downbeats},
                            attrs={"has_downbeats": True})
    index = tracks.assign(audio_path=tracks["track_id"] + ".wav", annotation_path=tracks["track_id"] + ".beats",
                          annotation_format="beats", has_downbeats=True, duration_s=N_FRAMES / FPS, split="train",
                          n_beats="", bpm="", beats_per_bar="", source="")
    index.drop(columns=["style", "i"]).to_csv(root / "tracks.csv", index=False)
    return TrackStores.from_paths(root / "tracks.csv", sorted((root / "mels").glob("*.h5")),
                                  sorted((root / "targets").glob("*.h5")))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A base CRNN + LTM trained on the base style only, and stores with both styles."""
    root = tmp_path_factory.mktemp("adapt")
    stores = _write_stores(root / "data", {"synth": ("base", 8), "mine": ("unseen", 10)})
    base_ids = adapt_tracks(stores.tracks, ["synth"])
    base_csv = root / "base_tracks.csv"
    stores.rows(base_ids).assign(split="train").to_csv(base_csv, index=False)
    mels, targets = list(stores.mels.values()), list(stores.targets.values())
    train_crnn(TrainingStores(mels, targets, base_csv), TINY_CRNN, root / "base" / "crnn", progress=False)
    from beatgrid.activations import extract_shard_activations

    act_paths = []
    for shard, ids in stores.by_shard(base_ids).items():
        act_paths.append(root / "base_act" / f"{shard}.h5")
        extract_shard_activations(root / "base" / "crnn" / "model.pt", stores.mels[shard], act_paths[-1],
                                  track_ids=ids, device="cpu", progress=False)
    train_ltm(TrainingStores(act_paths, targets, base_csv), TINY_LTM, root / "base" / "ltm", progress=False)
    return root, stores


def _cfg(root, **overrides) -> AdaptConfig:
    return AdaptConfig(**{
        "init_from": str(root / "base"), "folds": 2, "reference_trackers": [], "trim_seconds": 0.0,
        "methods": ["crnn_peaks", "ltm_online"], "learning_curve": [3], "learning_curve_folds": 1,
        "crnn": {"epochs": 6, "lr": 0.01, "batch_size": 4, "crop_frames": 300, "augment": False, "device": "cpu"},
        "ltm": {"epochs": 1, "batch_size": 4, "crop_frames": 300, "device": "cpu"},
        **overrides,
    })


def test_folds_never_leak_a_track_into_its_own_model():
    ids = [f"mine_{i:02d}" for i in range(23)]
    fold_of = fold_of_tracks(ids, 5, seed=3)
    assert sorted(np.bincount(list(fold_of.values()))) == [4, 4, 5, 5, 5]
    for fold in range(5):
        train = fold_train_ids(ids, fold, 5, 3)
        assert not {t for t in train if fold_of[t] == fold}
        assert len(train) + sum(k == fold for k in fold_of.values()) == len(ids)
        five, ten = fold_train_ids(ids, fold, 5, 3, n_tracks=5), fold_train_ids(ids, fold, 5, 3, n_tracks=10)
        assert len(five) == 5 and set(five) <= set(ten) <= set(train)  # nested subsets of the fold's own
    assert fold_train_ids(ids, None, 5) == sorted(ids)
    assert fold_of_tracks(list(reversed(ids)), 5, seed=3) == fold_of  # the hash, not the order


def test_the_tracks_of_one_group_share_a_fold(setup, tmp_path, monkeypatch):
    """Two mixes of one piece (the index's ``group``) are never one in training and one held out."""
    root, stores = setup
    mine = adapt_tracks(stores.tracks, ["mine"])
    pieces = {t: f"piece{i // 2}" for i, t in enumerate(mine)}
    grouped = replace(stores, tracks=stores.tracks.assign(group=stores.tracks["track_id"].map(pieces).fillna("")))
    adaptation = Adaptation(grouped, _cfg(root, folds=5), progress=False)
    assert adaptation.groups == pieces
    assert curve_plan(mine, adaptation.cfg, pieces).n_full == 8  # whole pieces leave each fold
    seen = []
    monkeypatch.setattr(Adaptation, "adapt_models", lambda self, ids, out: seen.append(("train", list(ids))))
    monkeypatch.setattr(Adaptation, "evaluate_models", lambda self, models, ids, out, label:
                        seen.append(("held out", list(ids))) or pd.DataFrame({"track_id": list(ids)}))
    for fold in range(5):
        seen.clear()
        adaptation.run_fold(mine, fold, tmp_path / f"fold{fold}")
        (_, train), (_, held_out) = seen
        assert len(held_out) == 2 and {pieces[t] for t in train}.isdisjoint({pieces[t] for t in held_out})
    assert any(fold_of_tracks(mine, 5, 0)[a] != fold_of_tracks(mine, 5, 0)[b]  # without groups they would straddle
               for a, b in zip(mine[::2], mine[1::2]))


def test_replay_share_and_dataset_selection(setup):
    _, stores = setup
    pool = adapt_tracks(stores.tracks, ["synth"])
    assert replay_ids(pool, 6, 0.25) == replay_ids(list(reversed(pool)), 6, 0.25)
    assert len(replay_ids(pool, 6, 0.25)) == 2 and replay_ids(pool, 6, 0.0) == []
    assert len(adapt_tracks(stores.tracks, ["mine"])) == 10
    with pytest.raises(ValueError, match="nope"):
        adapt_tracks(stores.tracks, ["nope"])
    with pytest.raises(ValueError, match="replay"):
        AdaptConfig(replay=1.0)


def test_library_defaults_equal_the_package_config():
    """AdaptConfig() (library callers) means what the config's adapt: block means (workflow and CLI)."""
    from dataclasses import fields

    from beatgrid.workflow import load_config

    library, configured = AdaptConfig(), AdaptConfig.from_config(load_config())
    for name in (f.name for f in fields(AdaptConfig)):
        if name != "inference":  # from_config adds the inference: block's settings, the library none
            assert getattr(library, name) == getattr(configured, name), f"adapt default {name!r} differs"


def test_adaptation_to_an_unseen_style_beats_the_unadapted_model(setup, tmp_path):
    root, stores = setup
    mine = adapt_tracks(stores.tracks, ["mine"])
    cfg = _cfg(root)
    adaptation = Adaptation(stores, cfg, progress=False)
    fold = adaptation.run_fold(mine, 0, tmp_path / "fold0")
    held_out = set(fold["track_id"])
    assert held_out == {t for t, k in fold_of_tracks(mine, 2).items() if k == 0}
    trained_on = set(pd.read_csv(tmp_path / "fold0" / "tracks.csv")["track_id"])
    assert not trained_on & held_out
    before = adaptation.evaluate_models(root / "base", sorted(held_out), tmp_path / "pretrained", "pretrained")
    # The CRNN carries the style; the tiny LTM here gets too few steps to be judged.
    assert set(fold["method"]) == {"crnn_peaks (adapted, 2-fold CV)", "ltm_online (adapted, 2-fold CV)"}
    for metric in ("beat_f", "downbeat_f"):
        f_before = before.loc[before["method"] == "crnn_peaks (pretrained)", metric].fillna(0.0).mean()  # no beat: NaN
        f_after = fold.loc[fold["method"] == "crnn_peaks (adapted, 2-fold CV)", metric].mean()
        assert f_after > f_before + 0.2, (metric, f_before, f_after)
    _, meta = load_model(tmp_path / "fold0" / "crnn" / "model.pt")
    assert meta["model_config"]["conv_channels"] == [4]  # the starting model's sizes


def test_frozen_layers_stay_and_a_rerun_has_nothing_to_do(setup, tmp_path, caplog):
    root, stores = setup
    mine = adapt_tracks(stores.tracks, ["mine"])[:4]
    cfg = _cfg(root, replay=0.25, crnn={"epochs": 1, "freeze": ["blocks"], "device": "cpu", "augment": False})
    pool = adapt_tracks(stores.tracks, ["synth"])
    adaptation = Adaptation(stores, cfg, replay_pool=pool, progress=False)
    adaptation.adapt_models(mine, tmp_path)
    trained_on = pd.read_csv(tmp_path / "tracks.csv")["track_id"].tolist()
    assert trained_on == sorted(mine + replay_ids(pool, len(mine), cfg.replay, cfg.fold_seed))  # with the replayed
    base, _ = load_model(root / "base" / "crnn" / "model.pt")
    tuned, _ = load_model(tmp_path / "crnn" / "model.pt")
    tuned_weights = dict(tuned.named_parameters())
    for name, weight in base.named_parameters():
        same = torch.equal(tuned_weights[name], weight)
        assert same == name.startswith("blocks."), name
    mtime = (tmp_path / "ltm" / "model.pt").stat().st_mtime_ns
    with caplog.at_level("INFO", logger="beatgrid.adapt"):
        adaptation.adapt_models(mine, tmp_path)
    assert "adapted already" in caplog.text and (tmp_path / "ltm" / "model.pt").stat().st_mtime_ns == mtime


def test_keep_norm_statistics_auto_keeps_them_below_ten_tracks():
    assert KEEP_NORM_STATISTICS_BELOW_TRACKS == 10
    assert [keep_norm_statistics("auto", n) for n in (1, 5, 9, 10, 33)] == [True, True, True, False, False]
    assert keep_norm_statistics(True, 40) is True and keep_norm_statistics(False, 3) is False
    with pytest.raises(ValueError, match="keep_norm_statistics"):
        keep_norm_statistics("yes", 3)
    assert AdaptConfig().crnn["keep_norm_statistics"] == "auto"


def _norm_statistics(model_file) -> dict[str, torch.Tensor]:
    model, _ = load_model(model_file)
    return {name: value for name, value in model.state_dict().items() if "running_" in name}


@pytest.mark.parametrize("setting, n_tracks, kept", [("auto", 4, True), ("auto", 10, False), (False, 4, False)])
def test_few_tracks_keep_the_starting_norm_statistics(setup, tmp_path, setting, n_tracks, kept):
    """With ``auto`` and four tracks the BatchNorm running statistics are the starting model's
    (the weights still train); with ten, or with ``false``, they move towards the tracks."""
    root, stores = setup
    mine = adapt_tracks(stores.tracks, ["mine"])[:n_tracks]
    assert len(mine) == n_tracks
    cfg = _cfg(root, crnn={"epochs": 1, "device": "cpu", "augment": False, "keep_norm_statistics": setting})
    Adaptation(stores, cfg, progress=False).adapt_models(mine, tmp_path)
    base = _norm_statistics(root / "base" / "crnn" / "model.pt")
    tuned = _norm_statistics(tmp_path / "crnn" / "model.pt")
    assert base and base.keys() == tuned.keys()
    assert all(torch.equal(base[name], tuned[name]) for name in base) == kept
    base_weights, _ = load_model(root / "base" / "crnn" / "model.pt")
    tuned_weights, _ = load_model(tmp_path / "crnn" / "model.pt")
    assert not torch.equal(base_weights.state_dict()["head.weight"], tuned_weights.state_dict()["head.weight"])


def test_cross_validation_summary_and_learning_curve(setup, tmp_path):
    root, stores = setup
    mine = adapt_tracks(stores.tracks, ["mine"])
    cfg = _cfg(root, crnn={"epochs": 1, "device": "cpu", "augment": False}, methods=["crnn_peaks"])
    result = Adaptation(stores, cfg, progress=False).cross_validate(mine, tmp_path)
    summary = pd.read_csv(tmp_path / "summary.csv")
    from beatgrid.evaluation import SUMMARY_COLUMNS

    assert set(SUMMARY_COLUMNS) <= set(summary.columns) and "beat_f_std" in summary.columns
    assert set(summary["method"]) == {"crnn_peaks (pretrained)", "crnn_peaks (adapted, 2-fold CV)"}
    cv_rows = result["per_track"][result["per_track"]["method"].str.contains("CV")]
    assert sorted(cv_rows["track_id"]) == mine  # every track scored once, by the model that did not see it
    curve = result["learning_curve"]
    assert list(curve["n_tracks"]) == [0, 3, 5]
    assert (tmp_path / "gain.csv").is_file() and set(result["gain"]["method"]) == {"crnn_peaks"}
    assert curve.groupby("n_tracks")["n_eval_tracks"].nunique().eq(1).all()


def test_adaptation_gain_pairs_each_track_with_itself():
    """The gain is the mean of per-track differences, its interval paired: a constant +0.1 on
    every track is certain however spread the scores are; a mixed change holds 0."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, 20)
    rows = []
    for i, score in enumerate(base):
        dataset = "gtzan" if i < 15 else "jazz"
        rows += [{"method": "crnn_dbn (pretrained)", "track_id": f"t{i}", "dataset": dataset, "beat_f": score,
                  "downbeat_f": score, "tempo_acc1": 1.0},
                 {"method": "crnn_dbn (adapted, 5-fold CV)", "track_id": f"t{i}", "dataset": dataset,
                  "beat_f": score + 0.1, "downbeat_f": score + (0.3 if i % 2 else -0.3), "tempo_acc1": 1.0},
                 {"method": "librosa", "track_id": f"t{i}", "dataset": dataset, "beat_f": 0.5, "downbeat_f": np.nan,
                  "tempo_acc1": 0.0}]
    per_track = pd.DataFrame(rows).assign(split="cv").sample(frac=1.0, random_state=1)  # paired by track, not order
    gain = adaptation_gain(per_track, 5).set_index("dataset")
    assert list(gain.reset_index().columns) == GAIN_COLUMNS and set(gain["method"]) == {"crnn_dbn"}
    assert gain.loc["all", "n_tracks"] == 20 and gain.loc["jazz", "n_tracks"] == 5
    assert gain.loc["all", "beat_f_gain"] == pytest.approx(0.1)
    assert gain.loc["all", "beat_f_gain_ci_low"] == pytest.approx(0.1)  # the same change on every track
    assert gain.loc["all", "downbeat_f_gain_ci_low"] < 0 < gain.loc["all", "downbeat_f_gain_ci_high"]
    assert adaptation_losses(gain.reset_index()) == []  # better beat F, unresolved downbeat F
    worse = per_track.assign(beat_f=np.where(per_track["method"].str.contains("CV") & (per_track["dataset"] == "jazz"),
                                             per_track["beat_f"] - 0.3, per_track["beat_f"]))
    (sentence,) = adaptation_losses(adaptation_gain(worse, 5))
    assert sentence.startswith("the adapted crnn_dbn scored lower on jazz (5 tracks): beat F -0.200")
    slightly = worse.assign(beat_f=np.where(worse["beat_f"] < per_track["beat_f"], per_track["beat_f"] - 0.11,
                                            worse["beat_f"]))  # jazz: 0.01 below the pretrained on every track
    assert adaptation_losses(adaptation_gain(slightly, 5)) == []  # sure, but too small to report
    summary = summarize_cv(per_track).set_index(["method", "dataset"])
    low, high = summary.loc[("crnn_dbn (pretrained)", "all"), ["beat_f_ci_low", "beat_f_ci_high"]]
    assert low < base.mean() < high and high - low > 0.05  # unpaired: the scores' own spread


def test_gain_lines_say_what_adaptation_changed_with_its_interval():
    gain = pd.DataFrame([["all", "crnn_dbn", 42, 0.045, -0.011, 0.103, 0.166, 0.049, 0.293],
                         ["gtzan", "crnn_dbn", 30, 0.056, 0.008, 0.111, 0.195, 0.037, 0.359],
                         ["all", "crnn_peaks", 42, 0.017, -0.022, 0.057, float("nan"), float("nan"), float("nan")]],
                        columns=GAIN_COLUMNS)
    assert gain_lines(gain) == [
        "adapted - pretrained, crnn_dbn, 42 tracks: beat F +0.045 (95 % CI -0.011 to +0.103), "
        "downbeat F +0.166 (95 % CI +0.049 to +0.293)",
        "adapted - pretrained, crnn_peaks, 42 tracks: beat F +0.017 (95 % CI -0.022 to +0.057)",
    ]


def test_learning_curve_table_joins_labels():
    per_track = pd.DataFrame({"method": ["m (pretrained)", "m (pretrained)"], "beat_f": [0.2, 0.4],
                              "downbeat_f": [0.1, 0.1], "tempo_acc1": [0.0, 1.0]})
    table = learning_curve_table({0: per_track, 5: per_track.assign(method="m (adapted, 5-fold CV)")})
    assert list(table["method"]) == ["m", "m"] and table["beat_f"].tolist() == pytest.approx([0.3, 0.3])
    assert (table["beat_f_ci_low"] < table["beat_f"]).all() and (table["beat_f"] < table["beat_f_ci_high"]).all()
    assert table["downbeat_f_ci_low"].tolist() == pytest.approx([0.1, 0.1])  # the same score twice: no width



def test_a_crnn_only_starting_model_adapts_with_a_new_ltm(setup, tmp_path):
    import shutil

    root, stores = setup
    (tmp_path / "base" / "crnn").mkdir(parents=True)
    shutil.copy(root / "base" / "crnn" / "model.pt", tmp_path / "base" / "crnn" / "model.pt")
    mine = adapt_tracks(stores.tracks, ["mine"])[:4]
    cfg = _cfg(tmp_path, crnn={"epochs": 1, "device": "cpu", "augment": False},
               ltm={"epochs": 1, "device": "cpu", "channels": 4, "n_layers": 2})
    adaptation = Adaptation(stores, cfg, progress=False)
    adaptation.adapt_models(mine, tmp_path / "adapted")
    _, meta = load_model(tmp_path / "adapted" / "ltm" / "model.pt")
    assert meta["kind"] == "tcn" and meta["model_config"]["channels"] == 4  # sizes from the ltm block
    scored = adaptation.evaluate_models(tmp_path / "base", mine, tmp_path / "pretrained", "pretrained")
    assert set(scored["method"]) == {"crnn_peaks (pretrained)"}  # no LTM to score
