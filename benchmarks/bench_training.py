"""CRNN training throughput (frames/s) and activation extraction speed (x real time).

Synthetic tensors, the default ``crnn:`` block of config.yaml (or ``--config``), one
optimizer step per batch of ``batch_size`` crops of ``crop_frames`` frames, exactly as
:func:`beatgrid.training.train` runs them (masked BCE, AdamW, gradient clipping; AMP on
CUDA when the config asks for it). Extraction runs
:func:`beatgrid.activations.compute_activations` over a whole track.

    python benchmarks/bench_training.py [--device cuda] [--threads N] [--config config.yaml]

Prints a Markdown table row per measurement:
| machine | torch | device | what | frames/s | x real time |
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from beatgrid.activations import compute_activations
from beatgrid.provenance import cpu_name
from beatgrid.models import build_model
from beatgrid.models.losses import MaskedBCELoss
from beatgrid.device import resolve_device
from beatgrid.training import TrainConfig, lr_factor

ROOT = Path(__file__).resolve().parents[1]


def gpu_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else ""


def gpu_utilisation() -> str:
    """Current GPU utilisation as nvidia-smi reports it (empty if unavailable)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(model: torch.nn.Module, cfg: TrainConfig, n_mels: int, device: torch.device,
                steps: int, warmup: int) -> tuple[float, str]:
    """Training frames per second over ``steps`` optimizer steps (after ``warmup``)."""
    use_amp = cfg.amp and device.type == "cuda"
    model.to(device).train()
    loss_fn = MaskedBCELoss([10.0, 40.0]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps + warmup, warmup, cfg.min_lr_ratio))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.batch_size, cfg.crop_frames, n_mels, generator=generator) * 4
    y = (torch.rand(cfg.batch_size, cfg.crop_frames, 2, generator=generator) < 0.05).float()
    lengths = torch.full((cfg.batch_size,), cfg.crop_frames)
    utilisation = ""
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        xb, yb = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=use_amp):
            logits = model(xb, lengths)
        loss = loss_fn(logits.float(), yb, lengths.to(device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if device.type == "cuda" and step == warmup + steps // 2:
            utilisation = gpu_utilisation()
    _sync(device)
    seconds = time.perf_counter() - started
    return steps * cfg.batch_size * cfg.crop_frames / seconds, utilisation


def bench_extract(model: torch.nn.Module, n_mels: int, fps: float, device: torch.device,
                  track_s: float, repeats: int) -> float:
    """Seconds of audio per second of compute for whole-track activations."""
    mel = np.random.default_rng(0).gamma(2.0, 0.5, (int(track_s * fps), n_mels)).astype(np.float32)
    compute_activations(model, mel[: int(10 * fps)], device=device)  # warm-up
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        compute_activations(model, mel, device=device)
    _sync(device)
    return track_s * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--track-s", type=float, default=300.0, help="extraction track length (s)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = yaml.safe_load(args.config.read_text())
    block = dict(config.get("crnn", {}))
    features = config.get("features", {})
    n_mels = int(features.get("n_mels", 128))
    fps = float(features.get("sr", 22050)) / float(features.get("hop_length", 441))
    device = resolve_device(args.device)
    cfg = TrainConfig.from_dict(block)

    torch.manual_seed(0)
    model = build_model("crnn", {**block, "n_mels": n_mels})
    n_params = sum(p.numel() for p in model.parameters())
    train_fps, utilisation = bench_train(model, cfg, n_mels, device, args.steps, warmup=3)
    model.eval()
    realtime = bench_extract(model, n_mels, fps, device, args.track_s, repeats=2)

    machine = (f"{cpu_name()}, {torch.get_num_threads()} threads" if device.type == "cpu"
               else f"{gpu_name(device)} ({cpu_name()})")
    what = (f"CRNN {'causal' if block.get('causal') else 'BiLSTM'} "
            f"{list(block.get('conv_channels', []))}/{block.get('rnn_hidden')}x"
            f"{block.get('rnn_layers')}, {n_params:,} params, batch {cfg.batch_size}x"
            f"{cfg.crop_frames}" + (", AMP" if cfg.amp and device.type == "cuda" else ""))
    if utilisation:
        what += f", GPU util/mem {utilisation}"
    print("| machine | torch | device | model | train frames/s | extraction x real time |")
    print("|---|---|---|---|---|---|")
    print(f"| {machine} | {torch.__version__} | {device.type} | {what} | {train_fps:,.0f} | "
          f"{realtime:,.0f} |")


if __name__ == "__main__":
    main()
