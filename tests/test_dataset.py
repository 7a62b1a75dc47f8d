"""Frame datasets: crops, reproducibility, collate/padding, loading from the stores, input stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from beatgrid.data.dataset import (
    FrameDataset,
    MelNormalizer,
    collate_padded,
    load_frame_dataset,
    padding_mask,
)
from beatgrid.data.store import StoreError, atomic_h5, write_track

torch.set_num_threads(1)

LENGTHS = {"long": 500, "mid": 230, "short": 60}


def _data(n_features: int = 4):
    rng = np.random.default_rng(0)
    inputs, targets = {}, {}
    for track_id, frames in LENGTHS.items():
        # the frame index in feature 0 makes every crop identifiable
        x = rng.random((frames, n_features)).astype(np.float16)
        x[:, 0] = np.arange(frames) % 2048
        inputs[track_id] = x
        y = np.zeros((frames, 2), dtype=np.float32)
        y[::25, 0] = 1.0
        y[::100, 1] = 1.0
        targets[track_id] = y
    return inputs, targets


def test_whole_tracks_are_served_unchanged():
    inputs, targets = _data()
    dataset = FrameDataset(inputs, targets, ["mid", "long"])
    assert len(dataset) == 2
    x, y, track_id = dataset[1]
    assert track_id == "long"
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), inputs["long"].astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), targets["long"])


def test_crops_are_in_bounds_and_short_tracks_whole():
    inputs, targets = _data()
    dataset = FrameDataset(inputs, targets, list(LENGTHS), crop_frames=100, seed=3)
    for epoch in range(5):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            x, y, track_id = dataset[index]
            name, start, stop = dataset.crop_bounds(index)
            assert name == track_id
            if LENGTHS[track_id] <= 100:
                assert (start, stop) == (0, LENGTHS[track_id])
            else:
                assert stop - start == 100 and 0 <= start and stop <= LENGTHS[track_id]
            assert x.shape == (stop - start, 4) and y.shape == (stop - start, 2)
            np.testing.assert_array_equal(x[:, 0].numpy(), np.arange(start, stop))  # the right frames
            np.testing.assert_array_equal(y.numpy(), targets[track_id][start:stop])


def test_crops_are_reproducible_and_change_per_epoch():
    inputs, targets = _data()

    def starts(seed, epoch, crops_per_track=1):
        dataset = FrameDataset(inputs, targets, list(LENGTHS), crop_frames=50, seed=seed,
                               crops_per_track=crops_per_track)
        dataset.set_epoch(epoch)
        return [dataset.crop_bounds(i)[1] for i in range(len(dataset))]

    assert starts(0, 0) == starts(0, 0)
    assert starts(0, 0) != starts(0, 1)
    assert starts(0, 0) != starts(1, 0)
    epochs = {tuple(starts(0, e)) for e in range(6)}
    assert len(epochs) == 6
    several = starts(0, 0, crops_per_track=4)
    assert len(several) == 12
    assert len(set(several[0:4])) > 1  # several crops of the long track differ


def test_dataloader_workers_give_the_same_crops():
    inputs, targets = _data()
    dataset = FrameDataset(inputs, targets, list(LENGTHS), crop_frames=80, seed=7, crops_per_track=2)
    dataset.set_epoch(2)
    in_process = [dataset[i][0] for i in range(len(dataset))]
    loader = DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=collate_padded)
    with_workers = [batch[0][0] for batch in loader]
    for a, b in zip(in_process, with_workers):
        torch.testing.assert_close(a, b)


def test_collate_pads_with_zeros_and_reports_lengths():
    inputs, targets = _data()
    dataset = FrameDataset(inputs, targets, ["short", "long", "mid"], crop_frames=200)
    batch = [dataset[i] for i in range(3)]
    x, y, track_ids, lengths = collate_padded(batch)
    assert track_ids == ["short", "long", "mid"]
    assert lengths.dtype == torch.long and lengths.tolist() == [60, 200, 200]
    assert x.shape == (3, 200, 4) and y.shape == (3, 200, 2)
    torch.testing.assert_close(x[0, :60], batch[0][0])
    assert not x[0, 60:].any() and not y[0, 60:].any()
    torch.testing.assert_close(y[1], batch[1][1])
    mask = padding_mask(lengths)
    assert mask.dtype == torch.bool and mask.shape == (3, 200)
    assert mask[0, :60].all() and not mask[0, 60:].any() and mask[1:].all()
    assert padding_mask(lengths, 250).shape == (3, 250) and not padding_mask(lengths, 250)[:, 200:].any()


def test_augment_gets_the_item_generator_and_may_change_length():
    inputs, targets = _data()
    seen = []

    def stretch(x, y, rng):
        seen.append(rng.random())
        return np.repeat(x, 2, axis=0), np.repeat(y, 2, axis=0)

    dataset = FrameDataset(inputs, targets, ["mid"], crop_frames=100, augment=stretch)
    x, y, _ = dataset[0]
    assert x.shape == (200, 4) and y.shape == (200, 2)
    dataset[0]
    assert seen[0] == seen[1]  # same item, same epoch: same augmentation draws
    broken = FrameDataset(inputs, targets, ["mid"], augment=lambda x, y, rng: (x[:-1], y))
    with pytest.raises(ValueError, match="frames"):
        broken[0]


def test_dataset_rejects_inconsistent_inputs():
    inputs, targets = _data()
    with pytest.raises(KeyError, match="nope"):
        FrameDataset(inputs, targets, ["nope"])
    targets["mid"] = targets["mid"][:-1]
    with pytest.raises(ValueError, match="'mid'.*230.*229"):
        FrameDataset(inputs, targets, ["mid"])
    with pytest.raises(ValueError, match="crop_frames"):
        FrameDataset(inputs, targets, ["long"], crop_frames=0)


def _write_stores(tmp_path, inputs, targets, downbeats_known=("long", "mid"), fps=50.0):
    mel_paths, target_paths = [], []
    for shard, ids in (("000", ["long"]), ("001", ["mid", "short"])):
        mel_path, target_path = tmp_path / f"mels_{shard}.h5", tmp_path / f"targets_{shard}.h5"
        with atomic_h5(mel_path, attrs={"fps": fps, "n_mels": 4}) as mels, \
                atomic_h5(target_path, attrs={"fps": 50.0, "widen_frames": 1}) as tgts:
            for track_id in ids:
                write_track(mels, track_id, {"mel": inputs[track_id]})
                write_track(tgts, track_id, {"beat": targets[track_id][:, 0], "downbeat": targets[track_id][:, 1]},
                            attrs={"has_downbeats": track_id in downbeats_known})
        mel_paths.append(mel_path)
        target_paths.append(target_path)
    return mel_paths, target_paths


def test_load_frame_dataset_reads_the_stores(tmp_path):
    inputs, targets = _data()
    mel_paths, target_paths = _write_stores(tmp_path, inputs, targets)
    dataset = load_frame_dataset(mel_paths, "mel", target_paths, ["short", "long"], crop_frames=100, seed=1)
    assert dataset.track_ids == ["short", "long"]
    assert dataset.inputs["long"].dtype == np.float16  # kept compact in memory
    np.testing.assert_array_equal(dataset.targets["long"], targets["long"])
    assert dataset.has_downbeats == {"short": False, "long": True}
    x, y, _ = dataset[1]
    assert x.shape == (100, 4) and y.shape == (100, 2)
    with pytest.raises(StoreError, match="missing_track"):
        load_frame_dataset(mel_paths, "mel", target_paths, ["missing_track"])


def test_load_frame_dataset_refuses_misaligned_stores(tmp_path):
    inputs, targets = _data()
    short_targets = dict(targets, mid=targets["mid"][:-3])
    mel_paths, target_paths = _write_stores(tmp_path, inputs, short_targets)
    with pytest.raises(ValueError, match="'mid'.*230.*227"):
        load_frame_dataset(mel_paths, "mel", target_paths, ["mid"])
    other = tmp_path / "other"
    other.mkdir()
    mel_paths, target_paths = _write_stores(other, inputs, targets, fps=100.0)
    with pytest.raises(ValueError, match="fps"):
        load_frame_dataset(mel_paths, "mel", target_paths, ["mid"])


def _noise_augment(inputs, targets, rng):
    inputs += rng.normal(0, 0.1, inputs.shape).astype(np.float32)
    return inputs, targets


def _batches(dataset, epochs=(0, 1), workers=0):
    batches = []
    for epoch in epochs:
        dataset.set_epoch(epoch)
        sampler = torch.utils.data.RandomSampler(dataset, generator=torch.Generator().manual_seed(epoch))
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers, collate_fn=collate_padded)
        batches += list(loader)
    return batches


@pytest.mark.parametrize("workers", [0, 2])
def test_on_demand_dataset_serves_the_same_batches_as_in_memory(tmp_path, workers):
    inputs, targets = _data()
    mel_paths, target_paths = _write_stores(tmp_path, inputs, targets)
    kwargs = dict(crop_frames=80, seed=3, crops_per_track=2, augment=_noise_augment)
    in_memory = load_frame_dataset(mel_paths, "mel", target_paths, list(LENGTHS), memory_budget_gb=1.0, **kwargs)
    on_demand = load_frame_dataset(mel_paths, "mel", target_paths, list(LENGTHS), memory_budget_gb=1e-9, **kwargs)
    assert not in_memory.on_demand and on_demand.on_demand
    assert on_demand.has_downbeats == in_memory.has_downbeats
    expected, served = _batches(in_memory), _batches(on_demand, workers=workers)
    assert len(expected) == len(served) > 0
    for (x_a, y_a, ids_a, n_a), (x_b, y_b, ids_b, n_b) in zip(expected, served):
        assert ids_a == ids_b
        torch.testing.assert_close(x_a, x_b, rtol=0, atol=0)
        torch.testing.assert_close(y_a, y_b, rtol=0, atol=0)
        torch.testing.assert_close(n_a, n_b)
    # whole-track reads (normaliser fit, pos_weight) see the same arrays too
    for track_id in LENGTHS:
        np.testing.assert_array_equal(np.asarray(on_demand.inputs[track_id]), inputs[track_id])
        np.testing.assert_array_equal(np.asarray(on_demand.targets[track_id]), targets[track_id])


def test_on_demand_dataset_refuses_misaligned_stores(tmp_path):
    inputs, targets = _data()
    mel_paths, target_paths = _write_stores(tmp_path, inputs, dict(targets, mid=targets["mid"][:-3]))
    with pytest.raises(ValueError, match="'mid'.*230.*227"):
        load_frame_dataset(mel_paths, "mel", target_paths, ["mid"], memory_budget_gb=1e-9)
    with pytest.raises(StoreError, match="missing_track"):
        load_frame_dataset(mel_paths, "mel", target_paths, ["missing_track"], memory_budget_gb=1e-9)


def test_mel_normalizer_fit_apply_and_round_trip():
    rng = np.random.default_rng(0)
    arrays = [(rng.standard_normal((n, 3)) * [1.0, 2.0, 0.0] + [5.0, -1.0, 3.0]).astype(np.float16)
              for n in (100, 40, 7)]
    norm = MelNormalizer.fit(arrays)
    stacked = np.concatenate(arrays).astype(np.float64)
    np.testing.assert_allclose(norm.mean, stacked.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.std[:2], stacked.std(axis=0)[:2], rtol=1e-4)
    assert norm.std[2] == pytest.approx(1e-3)  # constant band: floored, no division by zero
    normalized = norm(stacked)
    np.testing.assert_allclose(normalized[:, :2].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized[:, :2].std(axis=0), 1.0, atol=1e-3)
    as_torch = norm(torch.from_numpy(stacked.astype(np.float32)))
    np.testing.assert_allclose(as_torch.numpy(), normalized, rtol=1e-5, atol=1e-5)
    restored = MelNormalizer.from_dict(norm.as_dict())
    np.testing.assert_array_equal(restored.mean, norm.mean)
    np.testing.assert_array_equal(restored.std, norm.std)
    assert MelNormalizer.from_dict(None) is None
    with pytest.raises(ValueError, match="zero frames"):
        MelNormalizer.fit([])


def test_cover_frames_per_epoch_and_split_track_ids(tmp_path):
    from beatgrid.data.dataset import FrameDataset, split_track_ids

    inputs = {"a": np.zeros((1000, 4), np.float32), "b": np.zeros((400, 4), np.float32)}
    targets = {t: np.zeros((len(x), 2), np.float32) for t, x in inputs.items()}
    cropped = FrameDataset(inputs, targets, ["a", "b"], crop_frames=200)
    assert cropped.cover_frames_per_epoch() == 4 and len(cropped) == 8  # mean 700 frames / 200
    whole = FrameDataset(inputs, targets, ["a", "b"])
    assert whole.cover_frames_per_epoch() == 1 and len(whole) == 2
    import pandas as pd

    table = pd.DataFrame({"track_id": ["a", "b", "c"], "split": ["train", "test", "train"]})  # all training needs
    table.to_csv(tmp_path / "t.csv", index=False)
    assert split_track_ids(tmp_path / "t.csv") == {"train": ["a", "c"], "val": [], "test": ["b"]}
    table.drop(columns="split").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="split"):
        split_track_ids(tmp_path / "bad.csv")
