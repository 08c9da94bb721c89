"""The training loop: in-memory tensors batched by index, no per-sample Python.

Each epoch draws a permutation, slices mini-batches ``X[perm[i:i+b]]`` (and the same rows of
the optional targets ``y``: labels with −1 for unlabelled rows, or real values), and takes
one optimiser step on ``model(x, y).total`` per batch. Around that: Adam or SGD with momentum, a
learning-rate schedule, a validation split with early stopping (best weights restored), a
progress bar, a per-epoch history, seeding (runs repeat exactly) and checkpoints that
:func:`train` can resume from. Checkpoints are safetensors + JSON, written atomically.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, field, make_dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file


class TrainingDiverged(FloatingPointError, ValueError):
    """The loss or the weights became non-finite: a FloatingPointError, and a ValueError since
    the usual cause is the data's scale or a setting (learning_rate) — aekit's rule is that
    bad input or settings raise ValueError."""
from tqdm.auto import tqdm

from ._files import atomic_write
from .settings import SETTINGS, names

# The loop's settings are the declared 'train' settings (aekit.settings), plus the integer
# seed the estimator derives from random_state and how often to checkpoint.
TrainConfig = make_dataclass(
    "TrainConfig",
    [(n, object, field(default=SETTINGS[n].default)) for n in names("train") if n != "random_state"]
    + [("seed", int, field(default=0)), ("checkpoint_every", int, field(default=1))],
    namespace={"__doc__": "The training loop's settings: the declared 'train' settings, an integer seed "
                          "and checkpoint_every (epochs between checkpoints).",
               "__module__": __name__})


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


def split_validation(X: torch.Tensor, fraction: float, generator: torch.Generator, y=None):
    """A random (train, validation) split of the rows of X (and y); none when fraction == 0.
    Returns (X_train, y_train, X_val, y_val)."""
    n = X.shape[0]
    if fraction <= 0:
        return X, y, None, None
    n_val = int(round(fraction * n))
    if n_val == 0 or n_val >= n:
        raise ValueError(f"validation_fraction={fraction:g} of {n} rows leaves {n_val} validation and "
                         f"{n - n_val} training rows; each needs at least one.")
    perm = torch.randperm(n, generator=generator)
    tr, va = perm[n_val:], perm[:n_val]
    return X[tr], None if y is None else y[tr], X[va], None if y is None else y[va]


@torch.no_grad()
def evaluate(model, X: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1024,
             sample: bool = True) -> float:
    """Mean per-example objective (reconstruction + a VAE's KL: −ELBO with one draw of z, or
    at z = μ when ``sample=False``, which draws no random numbers) over X, in eval mode."""
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, X.shape[0], batch_size):
        yb = None if y is None else y[i:i + batch_size]
        total += model.objective(X[i:i + batch_size], yb, sample=sample).sum().item()
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


def _check_targets(y, X, name):
    if y is None:
        return None
    if not torch.is_tensor(y):
        raise TypeError(f"{name} must be a torch tensor; got {type(y).__name__}.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has {y.shape[0]} rows but the data have {X.shape[0]}.")
    return y


def train(model, X: torch.Tensor, config: TrainConfig, X_val: torch.Tensor | None = None,
          resume: bool = False, callback=None, *, y: torch.Tensor | None = None,
          y_val: torch.Tensor | None = None) -> list[dict]:
    """Fit ``model`` to the rows of X (with targets y, when given: each batch's rows of y
    reach the model's loss terms as ``ctx.y``); returns the history, one dict per epoch.

    With ``resume=True`` and an existing ``config.checkpoint_path``, training continues
    from that checkpoint (weights, optimiser, schedule, RNG, history) to ``config.epochs``.
    ``callback(epoch_record)`` is called after each epoch; returning True stops training.
    """
    device = resolve_device(config.device)
    y = _check_targets(y, X, "y")
    model.to(device)
    X = X.to(device)
    y = None if y is None else y.to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        if X_val is None:
            X, y, X_val, y_val = split_validation(X, config.validation_fraction, generator, y)
        elif y is not None:
            y_val = _check_targets(y_val, X_val, "y_val")
        if X_val is not None:
            X_val = X_val.to(device)
            y_val = None if y_val is None else y_val.to(device)
        optimizer = make_optimizer(model.parameters(), config)
        scheduler = make_scheduler(optimizer, config)
        stopper = _EarlyStopping(config.patience, config.tol) if X_val is not None else None
        history: list[dict] = []
        start_epoch = 0
        if resume and config.checkpoint_path and Path(config.checkpoint_path).exists():
            start_epoch, history = load_checkpoint(config.checkpoint_path, model, optimizer, scheduler, generator, stopper)
        return _loop(model, (X, y), (X_val, y_val), config, optimizer, scheduler, generator, stopper, history,
                     start_epoch, callback)


def _diverged(model, record: dict, probe, first_loss: float) -> str | None:
    """Why training has diverged, or None: a non-finite training or validation loss, a
    non-finite weight, or a model whose objective on a fixed probe of training rows is over
    10⁴ times the first epoch's training loss (the loss of the last steps can look fine
    while the weights after them have blown up)."""
    for key in ("loss", "val_loss"):
        if key in record and not math.isfinite(record[key]):
            return f"the {'validation' if key == 'val_loss' else 'training'} loss became {record[key]}"
    with torch.no_grad():
        if not torch.isfinite(torch.stack([p.detach().sum() for p in model.parameters()]).sum()):
            return "the weights became NaN or infinite"
    value = evaluate(model, *probe, sample=False)
    if not math.isfinite(value) or value > 1e4 * max(abs(first_loss), 1e-3):
        return f"the model's loss on training rows reached {value:.3g} (first epoch: {first_loss:.3g})"
    return None


def _loop(model, data, val, cfg, optimizer, scheduler, generator, stopper, history, start_epoch, callback):
    (X, y), (X_val, y_val) = data, val
    n = X.shape[0]
    probe = (X[:256], None if y is None else y[:256])
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
            idx = perm[i:i + bs]
            out = model(X[idx], None if y is None else y[idx])
            optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            optimizer.step()
            for k, v in out.terms.items():
                sums[k] = sums[k] + v if k in sums else v
            n_batches += 1
        record = {"epoch": epoch + 1, **{k: v.item() / n_batches for k, v in sums.items()},
                  "lr": optimizer.param_groups[0]["lr"]}
        if X_val is not None:
            record["val_loss"] = evaluate(model, X_val, y_val)
        why = _diverged(model, record, probe, history[0]["loss"] if history else record["loss"])
        if why:
            raise TrainingDiverged(f"training diverged at epoch {epoch + 1}: {why}; lower learning_rate "
                                     "or scale the data.")
        stop = X_val is not None and cfg.early_stopping and stopper.update(record["val_loss"], epoch, model)
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
