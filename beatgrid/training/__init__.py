"""The one trainer for every beatgrid model (the CRNN over mels, the LTM over activations).

:func:`train` fits any module mapping ``[B, T, F]`` inputs to ``[B, T, 2]`` beat/downbeat
logits on a dataset of ``(inputs [T, F], targets [T, 2], track_id)`` items
(:class:`beatgrid.data.dataset.FrameDataset`):

- batches of random crops (the dataset crops; the trainer pads with ``collate_padded``),
  a loss masked on padding (:mod:`beatgrid.models.losses`) with class-imbalance weights,
  downbeat loss switched off for tracks annotated without downbeats;
- AdamW, linear warm-up then cosine decay (per step), gradient clipping, mixed
  precision (``torch.autocast`` + ``GradScaler``) on CUDA only;
- seeded (python, numpy, torch); on CPU two runs give identical weights;
- validation on whole tracks after every epoch: loss, and mir_eval F-measure of the
  beats (and downbeats) found by peak picking the activations;
- ``model.pt`` (:func:`beatgrid.models.save_model`), written only when training has
  finished, holds the best epoch by the mean of validation beat F and downbeat F
  (:func:`selection_score`; ties: lower validation loss), so an epoch that finds the beats
  but not the metre is not kept; early stopping after ``patience`` epochs without
  improvement;
- ``checkpoint.pt`` after every epoch (model, optimizer, scheduler, scaler, RNG states,
  history, the best state so far, early-stopping counter): re-running with the same
  config and data resumes from it; anything else starts afresh and says so in the log;
  :func:`export_best_model` writes its best epoch so far as a model.pt;
- ``history.csv`` (one row per epoch) and ``curves.png``; a tqdm progress bar on a TTY.

A model may take ``forward(x, lengths)``; it then gets the valid length of every row
(the CRNN uses it to make padded batches exact). Otherwise it gets ``forward(x)``.

Modules: :mod:`.config` (settings and result), :mod:`.runtime` (seeds, schedule, frozen
layers, loader workers), :mod:`.epoch` (one training epoch, validation), :mod:`.selection`
(best epoch and early stopping), :mod:`.checkpoint` (identity, save, resume),
:mod:`.outputs` (history.csv, curves.png), :mod:`.loop` (:func:`train`); what the workflow
trains with it: :mod:`.crnn` (the CRNN over the mel stores, and its fold models) and :mod:`.ltm`
(the LTM over the activation stores), both from a :class:`.stores.TrainingStores`.
"""

from ..device import resolve_device
from .checkpoint import CHECKPOINT_NAME, CHECKPOINT_VERSION, export_best_model
from .config import HISTORY_COLUMNS, TrainConfig, TrainResult
from .epoch import evaluate
from .loop import MODEL_NAME, train
from .outputs import plot_curves
from .runtime import freeze_parameters, loader_workers, lr_factor, seed_everything, train_mode
from .selection import selection_score

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "selection_score", "seed_everything",
           "resolve_device", "lr_factor", "freeze_parameters", "train_mode", "loader_workers", "plot_curves",
           "export_best_model", "HISTORY_COLUMNS", "CHECKPOINT_NAME", "CHECKPOINT_VERSION", "MODEL_NAME"]
