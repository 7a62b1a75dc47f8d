"""The files a training run leaves besides the model: history.csv and curves.png."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_write, atomic_write_text
from .config import HISTORY_COLUMNS

__all__ = ["write_history", "plot_curves"]


def write_history(out_dir: Path, history: list[dict[str, float]]) -> None:
    """``out_dir/history.csv``: one row per epoch, columns :data:`HISTORY_COLUMNS`."""
    import pandas as pd

    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    atomic_write_text(out_dir / "history.csv", frame.to_csv(index=False, float_format="%.6g"))


def plot_curves(history: list[dict[str, float]], path: str | Path, title: str = "",
                best_epoch: int | None = None) -> None:
    """Loss (train, validation) and validation F-measures per epoch, to ``path`` (PNG);
    a dashed line marks ``best_epoch`` (the weights in model.pt)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_f) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_f.plot(epochs, [r["val_beat_f"] for r in history], "o-", label="beat F")
    ax_f.plot(epochs, [r["val_downbeat_f"] for r in history], "o-", label="downbeat F")
    ax_f.set_xlabel("epoch")
    ax_f.set_ylabel("validation F-measure")
    ax_f.set_ylim(0, 1.02)
    ax_f.legend()
    for ax in (ax_loss, ax_f):
        ax.grid(alpha=0.3)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
