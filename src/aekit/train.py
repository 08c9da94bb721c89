"""The training loop: in-memory tensors batched by index, no per-sample Python.

Each epoch draws a permutation, slices mini-batches ``X[perm[i:i+b]]``, and takes one
optimiser step on ``model(x).total`` per batch. Around that: Adam or SGD with momentum, a
learning-rate schedule, a validation split with early stopping (best weights restored), a
progress bar, a per-epoch history, seeding (runs repeat exactly) and checkpoints that
:func:`train` can resume from. Checkpoints are safetensors + JSON, written atomically.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .io import atomic_write


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 128
    optimizer: str = "adam"            # 'adam' or 'sgd' (with momentum)
    learning_rate: float = 1e-3
    momentum: float = 0.9
    lr_schedule: str | None = None     # None, 'cosine', 'step' (×0.1 at 50% and 75%), 'plateau'
    validation_fraction: float = 0.0
    early_stopping: bool = False
    patience: int = 10
    tol: float = 1e-4                  # relative improvement that resets patience
    seed: int = 0
    device: str = "cpu"
    verbose: bool = False
    checkpoint_path: str | None = None
    checkpoint_every: int = 1


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA, else Apple MPS, else CPU; other names are passed to torch."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'mps' or 'auto'; got {device!r}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA GPU is available; use device='auto' or 'cpu'.")
    return dev


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.learning_rate)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum)
    raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {cfg.optimizer!r}.")


def make_scheduler(optimizer, cfg: TrainConfig):
    s = cfg.lr_schedule
    if s in (None, "none", "constant"):
        return None
    if s == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.epochs))
    if s == "step":
        milestones = sorted({max(1, cfg.epochs // 2), max(1, (3 * cfg.epochs) // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if s == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, cfg.patience // 2))
    raise ValueError(f"lr_schedule must be None, 'cosine', 'step' or 'plateau'; got {s!r}.")


def split_validation(X: torch.Tensor, fraction: float, generator: torch.Generator):
    """A random (train, validation) split of the rows of X; no split when fraction == 0."""
    n = X.shape[0]
    n_val = int(round(fraction * n))
    if fraction <= 0 or n_val == 0 or n_val >= n:
        return X, None
    perm = torch.randperm(n, generator=generator)
    return X[perm[n_val:]], X[perm[:n_val]]


@torch.no_grad()
def evaluate(model, X: torch.Tensor, batch_size: int = 1024) -> float:
    """Mean per-example loss (reconstruction + VAE KL) over X, model in eval mode."""
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, X.shape[0], batch_size):
        total += model.per_example_loss(X[i:i + batch_size]).sum().item()
    model.train(was_training)
    return total / X.shape[0]


class _EarlyStopping:
    def __init__(self, patience: int, tol: float):
        self.patience, self.tol = patience, tol
        self.best = math.inf
        self.best_epoch = -1
        self.best_state = None
        self.bad_epochs = 0

    def update(self, value: float, epoch: int, model) -> bool:
        """Record this epoch's validation loss; True when training should stop."""
        if value < self.best - self.tol * abs(self.best if math.isfinite(self.best) else value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def train(model, X: torch.Tensor, config: TrainConfig, X_val: torch.Tensor | None = None,
          resume: bool = False, callback=None) -> list[dict]:
    """Fit ``model`` to the rows of X; returns the history, one dict per epoch.

    With ``resume=True`` and an existing ``config.checkpoint_path``, training continues
    from that checkpoint (weights, optimiser, schedule, RNG, history) to ``config.epochs``.
    ``callback(epoch_record)`` is called after each epoch; returning True stops training.
    """
    device = resolve_device(config.device)
    model.to(device)
    X = X.to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        if X_val is None:
            X, X_val = split_validation(X, config.validation_fraction, generator)
        if X_val is not None:
            X_val = X_val.to(device)
        optimizer = make_optimizer(model.parameters(), config)
        scheduler = make_scheduler(optimizer, config)
        stopper = _EarlyStopping(config.patience, config.tol) if X_val is not None else None
        history: list[dict] = []
        start_epoch = 0
        if resume and config.checkpoint_path and Path(config.checkpoint_path).exists():
            start_epoch, history = load_checkpoint(config.checkpoint_path, model, optimizer, scheduler, generator, stopper)
        return _loop(model, X, X_val, config, optimizer, scheduler, generator, stopper, history, start_epoch, callback)


def _loop(model, X, X_val, cfg, optimizer, scheduler, generator, stopper, history, start_epoch, callback):
    n = X.shape[0]
    bs = min(cfg.batch_size, n)
    bar = tqdm(range(start_epoch, cfg.epochs), disable=not cfg.verbose, desc="training", unit="epoch",
               initial=start_epoch, total=cfg.epochs)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=generator).to(X.device)
        sums: dict[str, torch.Tensor] = {}
        n_batches = 0
        for i in range(0, n, bs):
            xb = X[perm[i:i + bs]]
            out = model(xb)
            optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            optimizer.step()
            for k, v in out.terms.items():
                sums[k] = sums[k] + v if k in sums else v
            n_batches += 1
        record = {"epoch": epoch + 1, **{k: v.item() / n_batches for k, v in sums.items()},
                  "lr": optimizer.param_groups[0]["lr"]}
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(f"the training loss became {record['loss']} at epoch {epoch + 1}; lower learning_rate or scale the data.")
        stop = False
        if X_val is not None:
            record["val_loss"] = evaluate(model, X_val)
            if cfg.early_stopping:
                stop = stopper.update(record["val_loss"], epoch, model)
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(record.get("val_loss", record["loss"]))
            else:
                scheduler.step()
        record["time"] = time.perf_counter() - t0
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4g}", **({"val": f"{record['val_loss']:.4g}"} if "val_loss" in record else {}))
        last = stop or epoch + 1 == cfg.epochs
        if cfg.checkpoint_path and ((epoch + 1) % cfg.checkpoint_every == 0 or last):
            save_checkpoint(cfg.checkpoint_path, model, optimizer, scheduler, generator, stopper, epoch + 1, history, cfg)
        if callback is not None and callback(record):
            stop = True
        if stop:
            break
    bar.close()
    if stopper is not None and cfg.early_stopping and stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
    return history


# -- checkpoints ----------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer, scheduler, generator, stopper, epoch, history, cfg):
    """Weights, optimiser state, schedule, RNG and history in one safetensors file."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    opt_meta = {"param_groups": opt_state["param_groups"], "state": {}}
    for idx, state in opt_state["state"].items():
        opt_meta["state"][str(idx)] = {}
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
                opt_meta["state"][str(idx)][key] = "tensor"
            else:
                opt_meta["state"][str(idx)][key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = generator.get_state()
    if stopper is not None and stopper.best_state is not None:
        for k, v in stopper.best_state.items():
            tensors[f"best.{k}"] = v.cpu().contiguous()
    meta = {
        "epoch": epoch,
        "history": history,
        "optimizer": opt_meta,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "stopper": None if stopper is None else {"best": stopper.best, "best_epoch": stopper.best_epoch, "bad_epochs": stopper.bad_epochs},
        "config": asdict(cfg),
    }
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"aekit_checkpoint": json.dumps(meta)}))


def load_checkpoint(path, model, optimizer, scheduler, generator, stopper):
    """Restore what :func:`save_checkpoint` wrote; returns (epoch, history)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["aekit_checkpoint"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable aekit checkpoint ({exc}).") from None
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    device = next(model.parameters()).device
    opt_meta = meta["optimizer"]
    state = {}
    for idx, entries in opt_meta["state"].items():
        state[int(idx)] = {key: (tensors[f"optim.{idx}.{key}"].to(device) if val == "tensor" else val)
                           for key, val in entries.items()}
    optimizer.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    if scheduler is not None and meta["scheduler"] is not None:
        state = meta["scheduler"]
        if "milestones" in state:  # a Counter of epochs: JSON turned its int keys into strings
            state["milestones"] = Counter({int(k): v for k, v in state["milestones"].items()})
        scheduler.load_state_dict(state)
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.generator"])
    if stopper is not None and meta["stopper"] is not None:
        stopper.best, stopper.best_epoch, stopper.bad_epochs = (meta["stopper"][k] for k in ("best", "best_epoch", "bad_epochs"))
        best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
        stopper.best_state = best or None
    return int(meta["epoch"]), list(meta["history"])
