"""Pre-train a torchvision classifier on a (e.g. FractalDB-style) stimulus set, resumably.

The recipe defaults follow Kataoka et al. (FractalDB, ACCV 2020): SGD with momentum 0.9, weight decay
1e-4, learning rate 0.01 divided by 10 after epochs 30 and 60 of 90, batch 256, random 224 crops,
normalisation mean 0.2 / std 0.5. Everything random is seeded and restarted per epoch from
``(seed, epoch)`` (data order, crops, dropout), and the model is initialised under a private RNG, so a
run resumed from its last checkpoint ends with exactly the weights of an uninterrupted one; the global
torch RNG is left as it was.

The output folder holds ``checkpoint.pt`` (model, optimiser, scheduler, epoch, config; written after
every epoch), ``weights.pt`` (the plain state dict, loadable with ``--weights PATH`` in ``compare``),
``log.csv`` (epoch, lr, loss, accuracy, seconds) and ``pretrain.json`` (config and classes); every file
is written atomically. Checkpoints are per epoch: an interrupted epoch is redone.
"""
from __future__ import annotations

import json
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import nn

from analyses.pretrain.config import PretrainConfig
from analyses.pretrain.data import CroppedImages, class_labels
from extractors.model_code import holds_code
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.io import atomic_path, write_text
from stimuli.csv_cells import frame_to_csv

CHECKPOINT, WEIGHTS, LOG, CONFIG = "checkpoint.pt", "weights.pt", "log.csv", "pretrain.json"
#: config fields that may change when a run is resumed (the rest must match the checkpoint)
RESUMABLE = ("epochs", "steps_per_epoch", "workers", "device")


@dataclass
class PretrainResult:
    """What :func:`pretrain` did: the folder, the epochs run now, the per-epoch log, the classes."""

    out_dir: Path
    epochs_run: list[int]
    log: pd.DataFrame
    classes: list[str] = field(default_factory=list)


def build_model(name: str, num_classes: int, seed: int) -> nn.Module:
    """An untrained torchvision ``name`` with ``num_classes`` outputs, initialised from ``seed`` privately."""
    from torchvision import models as tvm

    from extractors.models import check_model_name

    name = check_model_name(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return tvm.get_model(name, weights=None, num_classes=num_classes)
        except TypeError as err:
            raise RSABridgeError(f"torchvision's {name} cannot be built as a {num_classes}-class classifier "
                                 f"({err}); choose a classification model such as alexnet or resnet50") from None


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _check_config(config: PretrainConfig, n_classes: int) -> None:
    whole = {"epochs": config.epochs, "batch_size": config.batch_size, "crop": config.crop}
    for key, value in whole.items():
        if value < 1:
            raise RSABridgeError(f"{key} must be >= 1, not {value}")
    if config.steps_per_epoch is not None and config.steps_per_epoch < 1:
        raise RSABridgeError(f"steps_per_epoch must be >= 1 or None, not {config.steps_per_epoch}")
    if config.lr <= 0 or config.workers < 0 or config.seed < 0:
        raise RSABridgeError("lr must be > 0, workers >= 0 and seed >= 0")
    if n_classes > config.num_classes:
        raise RSABridgeError(f"the set has {n_classes} classes but the model {config.num_classes} outputs; "
                             f"pass --num-classes {n_classes} (weights.pt then no longer fits compare's "
                             "1000-class torchvision model)")


def _resume_state(out_dir: Path, config: PretrainConfig) -> dict | None:
    path = out_dir / CHECKPOINT
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: never runs the file's code
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, IndexError,
            KeyError, TypeError, UnicodeDecodeError) as err:
        what = ("holds model code (TorchScript or a pickled Python object), which a checkpoint never needs"
                if holds_code(path) else f"cannot be read ({(str(err).strip().splitlines() or [type(err).__name__])[0]})")
        raise RSABridgeError(f"checkpoint {str(path)!r} {what}; delete it to start afresh, or use another --out "
                             "folder") from None
    if not isinstance(state, dict):
        raise RSABridgeError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a pretrain checkpoint; "
                             "delete it to start afresh, or use another --out folder")
    saved = state.get("config", {})
    now = asdict(config)
    changed = [k for k in now if k not in RESUMABLE and _norm(saved.get(k)) != _norm(now[k])]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        raise RSABridgeError(f"{path} was trained with other settings ({diffs}); use the same settings to resume, "
                             "or another --out folder to start afresh")
    return state


def _norm(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def _run_epoch(model, loader, optimizer, loss_fn, device, steps: int | None) -> tuple[float, float, int]:
    model.train()
    total_loss, correct, seen, batches = 0.0, 0, 0, 0
    for x, y in loader:
        if steps is not None and batches >= steps:
            break
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        batches += 1
    return total_loss / max(seen, 1), correct / max(seen, 1), seen


def pretrain(stimulus_set, out_dir: str | os.PathLike, config: PretrainConfig = PretrainConfig(),
             progress: Callable[[str], None] | None = None) -> PretrainResult:
    """Train ``config.model`` to classify ``stimulus_set`` by ``config.label``; resume if ``out_dir`` has a checkpoint.

    Args:
        stimulus_set: a :class:`stimuli.StimulusSet` or a folder with manifest.csv.
        out_dir: folder for checkpoint.pt, weights.pt, log.csv, pretrain.json (created if absent).
        config: :class:`PretrainConfig`; on resume only ``epochs``, ``steps_per_epoch``, ``workers`` and
            ``device`` may differ from the checkpoint's.
        progress: called with one line per epoch (e.g. ``print``).

    Raises:
        RSABridgeError: a missing label column, fewer than 2 classes, more classes than outputs, bad
            settings, or a checkpoint made with other settings.
    """
    from extractors.models import check_device
    from stimuli import StimulusSet, load_stimulus_set

    if not isinstance(stimulus_set, StimulusSet):
        stimulus_set = load_stimulus_set(stimulus_set)
    labels = class_labels(stimulus_set, config.label)
    _check_config(config, len(labels.classes))
    device = check_device(config.device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(config.model, config.num_classes, config.seed).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.gamma)
    state = _resume_state(out_dir, config)
    start, rows = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, rows = int(state["epoch"]), list(state.get("log", []))
    write_text(json.dumps({"config": _jsonable(asdict(config)), "classes": labels.classes,
                             "stimulus_set": stimulus_set.name, "n_images": len(stimulus_set)}, indent=1),
                 out_dir / CONFIG)
    data = CroppedImages(stimulus_set, labels.targets, config.crop, config.mean, config.std, config.seed)
    loss_fn = nn.CrossEntropyLoss()
    ran = []
    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        data.set_epoch(epoch)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, sampler=order.tolist(),
                                             num_workers=config.workers, drop_last=False)
        lr = optimizer.param_groups[0]["lr"]
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(config.seed * 100_003 + epoch)  # dropout
            loss, accuracy, seen = _run_epoch(model, loader, optimizer, loss_fn, device, config.steps_per_epoch)
        scheduler.step()
        rows.append({"epoch": epoch + 1, "lr": lr, "loss": loss, "accuracy": accuracy, "images": seen,
                     "seconds": time.perf_counter() - began})
        cpu_state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
        _atomic_torch_save({"model": cpu_state, "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "config": asdict(config),
                            "classes": labels.classes, "log": rows}, out_dir / CHECKPOINT)
        _atomic_torch_save(cpu_state, out_dir / WEIGHTS)
        write_text(frame_to_csv(pd.DataFrame(rows), index=False), out_dir / LOG)  # numbers: unchanged
        ran.append(epoch + 1)
        if progress is not None:
            progress(f"epoch {epoch + 1}/{config.epochs}: lr {lr:g}, loss {loss:.4f}, accuracy {accuracy:.3f} "
                     f"({seen} images, {rows[-1]['seconds']:.1f} s)")
    return PretrainResult(out_dir, ran, pd.DataFrame(rows), labels.classes)


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
