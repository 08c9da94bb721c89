"""The training loop: in-memory tensors batched by index, no per-sample Python.

Each epoch draws a permutation, slices mini-batches ``X[perm[i:i+b]]`` (and the same rows of
the optional targets ``y``: labels with −1 for unlabelled rows, or real values), and takes
one optimiser step on ``model(x, y).total`` per batch. Around that: Adam or SGD with momentum, a
learning-rate schedule, a validation split with early stopping (best weights restored), a
progress bar, a per-epoch history, seeding (runs repeat exactly) and checkpoints that
:func:`train` can resume from. Checkpoints are safetensors + JSON, written atomically, with a
SHA-256 digest of their contents that resuming checks; a resumed run must have the
checkpoint's settings and model (only epochs, device and what is shown may change).

Data-parallel training (torch.distributed) is the same loop. Launched by ``torchrun`` (the
environment holds RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) or inside an initialised
process group, every rank draws the same permutation from the same seed, so the global
batches are those of one process; rank r takes its part of each (``torch.tensor_split``:
sizes differ by at most one row, the last, short batch included) and computes its *share* of
the global loss (:class:`aekit.parts.penalties.Shard`: Σ_rank v_i / n_global for
per-example terms, an all-reduce for batch statistics such as KL sparsity's ρ̂). The ranks'
gradients are summed by one all-reduce per step, so every rank takes the single-process step
on the global batch: the weights equal one process's within float rounding. Random
corruption and a VAE's draws of z come from each rank's own stream (seed + rank): the same
distribution, other draws. Validation and the epoch's logged terms are all-reduced; rank 0
alone shows progress, calls the callback (its stop decision is broadcast) and writes
checkpoints; a checkpoint holds no rank count, so a run resumes on any number of ranks.

X may be an in-memory tensor or an :class:`aekit.data.rows.NpyRows` (memory-mapped .npy
files): the loop only indexes it, ``X[idx]``, so out-of-core rows are read batch by batch and
a validation split is a view, not a copy.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from dataclasses import asdict, field, make_dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as _serialise
from tqdm.auto import tqdm

from ._files import atomic_write, digest
from ._heap import keep_heap
from .data.rows import NpyRows
from .parts.penalties import Shard
from .settings import SETTINGS, names


class TrainingDiverged(FloatingPointError, ValueError):
    """The loss or the weights became non-finite: a FloatingPointError, and a ValueError since
    the usual cause is the data's scale or a setting (learning_rate) — aekit's rule is that
    bad input or settings raise ValueError."""


# The loop's settings are the declared 'train' and 'semi' settings (aekit.settings), plus the integer
# seed the estimator derives from random_state and how often to checkpoint.
TrainConfig = make_dataclass(
    "TrainConfig",
    [(n, object, field(default=SETTINGS[n].default)) for n in names("train", "semi") if n != "random_state"]
    + [("seed", int, field(default=0)), ("checkpoint_every", int, field(default=1))],
    namespace={"__doc__": "The training loop's settings: the declared 'train' settings, an integer seed "
                          "and checkpoint_every (epochs between checkpoints).",
               "__module__": __name__})


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA, else Apple MPS, else CPU; 'cpu', 'cuda', 'cuda:N' or 'mps' as named,
    each checked to be present here (a ValueError says which is missing)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    kind = device.split(":", 1)[0] if isinstance(device, str) else None
    if kind not in ("cpu", "cuda", "mps"):  # before torch.device, which accepts (and warns on) many more
        raise ValueError(f"device must be 'cpu', 'cuda', 'mps' or 'auto'; got {device!r}.")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'mps' or 'auto'; got {device!r}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available; use device='auto' or 'cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                         "GPU(s); use device='cuda' or 'cpu'.")
    if dev.type == "mps" and not _mps_available():
        raise ValueError(f"device={device!r} was asked for but no Apple GPU (MPS) is available; use device='auto' or "
                         "'cpu'.")
    return dev


class _Ranks:
    """This process's place among the data-parallel ranks: (0, 1) when alone."""

    def __init__(self, rank: int = 0, world: int = 1, device=None):
        self.rank, self.world, self.device = rank, world, device or torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of t over the ranks (an all-reduce on this rank's device); t when alone."""
        if self.world == 1:
            return t
        u = t.to(self.device)
        torch.distributed.all_reduce(u)
        return u.to(t.device)

    def broadcast(self, flag: bool) -> bool:
        """Rank 0's value of flag, on every rank."""
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        torch.distributed.broadcast(t, 0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def launched_ranks() -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) from torchrun's environment (RANK, WORLD_SIZE,
    LOCAL_RANK) when WORLD_SIZE > 1, else None."""
    import os

    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them).") from None
    return (rank, world, local) if world > 1 else None


def setup_distributed(device: torch.device) -> tuple[_Ranks, torch.device]:
    """Join the data-parallel ranks: an initialised torch.distributed group as it is, else one
    made from torchrun's environment (gloo on CPU, NCCL on CUDA, each rank on GPU LOCAL_RANK);
    alone otherwise. Returns the ranks and the device this rank computes on."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    else:
        launched = launched_ranks()
        if launched is None:
            return _Ranks(), device
        if not dist.is_available():
            raise ValueError("WORLD_SIZE > 1 asks for distributed training but this PyTorch has no torch.distributed.")
        rank, world, local = launched
        if device.type == "cuda":
            device = torch.device("cuda", local % torch.cuda.device_count())
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    if world > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return _Ranks(rank, world, device), device


def autocast_for(device: torch.device, precision: str):
    """A factory of the context the loop's forward passes run in: nothing for 'float32'
    (exact: no autocast at all); for 'bfloat16', ``torch.autocast(device, bfloat16)``. Under
    it matrix products and convolutions take bfloat16 inputs (8 significant bits), while the
    weights, their gradients and the optimiser stay float32; the reconstruction loss and
    every logged term are computed in float32 (AutoencoderModel casts the decoder's output
    back), and so is validation (it runs outside). bfloat16 has float32's exponent range, so
    no loss scaling is needed (float16 would need it and is not offered)."""
    if precision == "float32":
        return contextlib.nullcontext
    if precision != "bfloat16":
        raise ValueError(f"precision must be 'float32' or 'bfloat16'; got {precision!r}.")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("precision='bfloat16' needs a GPU with bfloat16 arithmetic (compute capability 8.0 or "
                         "newer); this one has none: use precision='float32'.")
    if not torch.amp.is_autocast_available(device.type):
        raise ValueError(f"precision='bfloat16' (torch.autocast) is not available on device {device.type!r} in this "
                         "PyTorch; use precision='float32'.")
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD with momentum, in PyTorch's fused form where this PyTorch has one for the
    parameters' device (one kernel updates every parameter: the same update rule, rounded in
    another order; on the Hinton network it cuts a CPU step by ~12 %, BENCHMARKS.md), else
    the default (foreach) form."""
    params = list(params)
    if cfg.optimizer == "adam":
        kind, kwargs = torch.optim.Adam, {"lr": cfg.learning_rate}
    elif cfg.optimizer == "sgd":
        kind, kwargs = torch.optim.SGD, {"lr": cfg.learning_rate, "momentum": cfg.momentum}
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {cfg.optimizer!r}.")
    try:
        return kind(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/PyTorch
        return kind(params, **kwargs)


# Optimiser state below float32's smallest normal number (2⁻¹²⁶ ≈ 1.18e-38). Adam's moments of
# a parameter whose gradient has gone to zero (a dead ReLU unit) decay geometrically into that
# range and stay there: round-to-nearest keeps β·k·2⁻¹⁴⁹ at k·2⁻¹⁴⁹ once (1 − β)·k < ½, i.e.
# for k < 500 with β₂ = 0.999. CPUs compute on such subnormal numbers at a small fraction of
# their speed (measured: the fused Adam step of the Hinton network, ReLU units, 2.4 → 32 ms
# after two epochs), so the training loop sets them to zero every FLUSH_EVERY steps and at the
# end of every epoch.
SUBNORMAL_BELOW = torch.finfo(torch.float32).tiny
FLUSH_EVERY = 32
_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")


def flush_subnormal_state(optimizer: torch.optim.Optimizer) -> None:
    """Set every float32 CPU moment of ``optimizer`` (Adam's m and v, SGD's momentum) whose
    magnitude is below 2⁻¹²⁶ to zero, in place.

    The same training, bit for bit, but in a corner case: a subnormal v gives √v̂ < 3.5e-18
    (v̂ = v/(1 − β₂ᵗ) ≤ 1000·v), which vanishes when added to Adam's ε = 1e-8 (half the float32
    spacing there is 4.4e-16), so the denominator √v̂ + ε is unchanged; a subnormal m (m̂ ≤ 10·m)
    or momentum moves a parameter by at most lr·1.2e-29, which for learning rates up to 0.1
    rounds away on every float32 parameter of magnitude above 1e-22, and leaves m's next value
    β₁·m + (1 − β₁)·g unchanged unless g is itself near 1e-37 (measured: the Hinton network's
    weights after 3 epochs with ReLU units are bit-identical with and without, BENCHMARKS.md
    train_speed). GPU state is left alone (GPUs compute on subnormals at full speed)."""
    for state in optimizer.state.values():
        for key in _MOMENTS:
            t = state.get(key)
            if t is not None and t.dtype == torch.float32 and t.device.type == "cpu":
                t.masked_fill_(t.abs() < SUBNORMAL_BELOW, 0.0)


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
    if isinstance(X, NpyRows):  # out-of-core rows: views, nothing read
        return X.subset(tr), None if y is None else y[tr], X.subset(va), None if y is None else y[va]
    return X[tr], None if y is None else y[tr], X[va], None if y is None else y[va]


@torch.no_grad()
def evaluate(model, X: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1024,
             sample: bool = True, ranks: _Ranks | None = None) -> float:
    """Mean per-example objective (reconstruction + a VAE's KL: −ELBO with one draw of z, or
    at z = μ when ``sample=False``, which draws no random numbers) over X, in eval mode.
    With ``ranks`` (data-parallel) each rank scores its part of X and the sums are all-reduced."""
    was_training = model.training
    model.eval()
    n = X.shape[0]
    lo, hi = 0, n
    if ranks is not None and ranks.world > 1:
        bounds = [len(part) for part in torch.tensor_split(torch.arange(n), ranks.world)]
        lo = sum(bounds[:ranks.rank])
        hi = lo + bounds[ranks.rank]
    total = 0.0
    for i in range(lo, hi, batch_size):
        j = min(i + batch_size, hi)
        yb = None if y is None else y[i:j]
        total += model.objective(X[i:j], yb, sample=sample).sum().item()
    model.train(was_training)
    if ranks is not None and ranks.world > 1:
        total = ranks.sum_(torch.tensor([total], dtype=torch.float64)).item()
    return total / n


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
    Launched by torchrun (or in an initialised process group) it trains data-parallel: see
    the module's docstring. X may be an out-of-core :class:`aekit.data.rows.NpyRows`.
    """
    device = resolve_device(config.device)
    ranks, device = setup_distributed(device)
    if device.type == "cpu":
        keep_heap()  # once per process: each step's tensors reuse heap pages (aekit._heap)
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
        # frozen parameters (requires_grad=False: e.g. the encoder while a head is fitted) are left out
        optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], config)
        scheduler = make_scheduler(optimizer, config)
        stopper = _EarlyStopping(config.patience, config.tol) if X_val is not None else None
        history: list[dict] = []
        start_epoch = 0
        if resume and config.checkpoint_path and Path(config.checkpoint_path).exists():
            start_epoch, history = load_checkpoint(config.checkpoint_path, model, optimizer, scheduler, generator,
                                                   stopper, config=config)
        if ranks.rank:  # each rank its own stream for corruption and z (the permutation is shared)
            torch.manual_seed(config.seed + 7919 * ranks.rank + 104729 * start_epoch)
        if ranks.world > 1:
            ranks.barrier()  # every rank has read the checkpoint before rank 0 may replace it
        return _loop(model, (X, y), (X_val, y_val), config, optimizer, scheduler, generator, stopper, history,
                     start_epoch, callback, ranks)


def _labelled_rows(y):
    """Indices of the rows of y that carry a target (label >= 0, or no NaN), when some do
    not; None when every row is labelled or none is (then batches need no help)."""
    if y is None:
        return None
    mask = y >= 0 if not y.is_floating_point() else ~torch.isnan(y.reshape(y.shape[0], -1)).any(1)
    rows = torch.nonzero(mask).flatten()
    return rows if 0 < rows.numel() < y.shape[0] else None


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


def _reduce_gradients(params, ranks: _Ranks) -> None:
    """Sum the ranks' gradients (one all-reduce of one flat buffer): each rank then holds
    the gradient of the global batch's loss."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch._utils._flatten_dense_tensors(grads)
    torch.distributed.all_reduce(flat)
    for p, g in zip(params, torch._utils._unflatten_dense_tensors(flat, grads)):
        p.grad = g


def _loop(model, data, val, cfg, optimizer, scheduler, generator, stopper, history, start_epoch, callback,
          ranks=None):
    (X, y), (X_val, y_val) = data, val
    ranks = ranks or _Ranks()
    parallel = ranks.world > 1
    params = [p for group in optimizer.param_groups for p in group["params"]]
    n = X.shape[0]
    probe = (X[:256], None if y is None else y[:256])
    labelled = _labelled_rows(y) if cfg.labelled_per_batch else None
    autocast = autocast_for(X.device, cfg.precision)
    bs = min(cfg.batch_size, n)
    bar = tqdm(range(start_epoch, cfg.epochs), disable=not (cfg.verbose and ranks.main), desc="training",
               unit="epoch", initial=start_epoch, total=cfg.epochs)
    for epoch in bar:
        model.train()
        model.set_epoch(epoch)  # a resumed run sets it from the checkpoint's epoch
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=generator).to(X.device)
        sums: dict[str, torch.Tensor] = {}
        n_batches = 0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            if labelled is not None:  # every batch also gets labelled_per_batch labelled rows
                pick = torch.randint(labelled.numel(), (cfg.labelled_per_batch,), generator=generator)
                idx = torch.cat([idx, labelled[pick.to(labelled.device)]])
            with autocast():  # nothing, unless precision='bfloat16'
                if parallel:  # this rank's part of the global batch, and its share of the loss
                    shard = Shard(ranks.rank, ranks.world, idx.numel())
                    idx = torch.tensor_split(idx, ranks.world)[ranks.rank]
                    out = model(X[idx], None if y is None else y[idx], shard=shard)
                else:
                    out = model(X[idx], None if y is None else y[idx])
            optimizer.zero_grad(set_to_none=True)
            out.total.backward(inputs=params)  # only what the optimiser steps (not a penalty's ∂/∂x̃)
            if parallel:
                _reduce_gradients(params, ranks)
            optimizer.step()
            if n_batches % FLUSH_EVERY == FLUSH_EVERY - 1:
                flush_subnormal_state(optimizer)
            for k, v in out.terms.items():
                sums[k] = sums[k] + v if k in sums else v
            n_batches += 1
        flush_subnormal_state(optimizer)  # and at every epoch's end: checkpoints hold none
        if parallel:  # the shares of every rank make the global terms
            keys = list(sums)  # the same order on every rank: the model's terms
            sums = dict(zip(keys, ranks.sum_(torch.stack([sums[k].float() for k in keys]))))
        record = {"epoch": epoch + 1, **{k: v.item() / n_batches for k, v in sums.items()},
                  "lr": optimizer.param_groups[0]["lr"]}
        if X_val is not None:
            record["val_loss"] = evaluate(model, X_val, y_val, ranks=ranks)
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
        if cfg.checkpoint_path and ((epoch + 1) % cfg.checkpoint_every == 0 or last) and ranks.main:
            save_checkpoint(cfg.checkpoint_path, model, optimizer, scheduler, generator, stopper, epoch + 1, history, cfg)
        if callback is not None and ranks.main and callback(record):
            stop = True
        if parallel:
            stop = ranks.broadcast(stop)
        if stop:
            break
    bar.close()
    if stopper is not None and cfg.early_stopping and stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
    return history


# -- checkpoints ----------------------------------------------------------------------------
# A checkpoint is a safetensors file: the tensors "model.NAME" (weights), "optim.I.KEY" (the
# optimiser's per-parameter state), "rng.torch", "rng.generator" and "best.NAME" (early
# stopping's best weights), and one metadata key, "aekit_checkpoint", a JSON document with
# CHECKPOINT_KEYS: its "digest" is aekit._files.digest over the tensors and the rest of the
# document, "config" the TrainConfig and "model" each submodule's class and settings as text.
CHECKPOINT_KEY = "aekit_checkpoint"
CHECKPOINT_KEYS = {"epoch", "history", "optimizer", "scheduler", "stopper", "config", "model", "digest"}
# What a resumed run may change: how long it trains, where it runs, what it shows.
RESUMABLE_CHANGES = ("epochs", "device", "precision", "verbose", "checkpoint_path", "checkpoint_every")


def _model_description(model) -> dict:
    """Each submodule's class and plain settings (sizes, activations, penalty weights, loss),
    as text: what a run's architecture is, beyond the shapes of its weights."""
    def text(value):
        if torch.is_tensor(value) or isinstance(value, torch.nn.Module):
            return type(value).__name__
        r = repr(value)
        return type(value).__name__ if " at 0x" in r else r  # no memory addresses

    return {name or "(model)": type(module).__name__ + "(" + ", ".join(
        f"{k}={text(v)}" for k, v in sorted(vars(module).items()) if not k.startswith("_") and k != "training") + ")"
        for name, module in model.named_modules()}


def save_checkpoint(path, model, optimizer, scheduler, generator, stopper, epoch, history, cfg):
    """Weights, optimiser state, schedule, RNG and history in one safetensors file, with a digest."""
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
        "model": _model_description(model),
    }
    meta["digest"] = digest(tensors, meta)
    data = _serialise(tensors, metadata={CHECKPOINT_KEY: json.dumps(meta)})  # bytes, written by atomic_write alone
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _read_checkpoint(path) -> tuple[dict, dict]:
    """The document and tensors of a checkpoint, its digest checked."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = json.loads(metadata[CHECKPOINT_KEY])
    except Exception as exc:  # safetensors and json raise several kinds on a damaged file
        raise ValueError(f"{path} is not a readable aekit checkpoint ({type(exc).__name__}: {exc}).") from None
    if set(metadata) != {CHECKPOINT_KEY} or not isinstance(meta, dict) or set(meta) != CHECKPOINT_KEYS:
        found = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path} is not a readable aekit checkpoint: its header holds {found}, not "
                         f"{sorted(CHECKPOINT_KEYS)} (a checkpoint of an older aekit, without a digest, "
                         "cannot be checked: start a fresh run).")
    try:
        ok = digest(tensors, {k: v for k, v in meta.items() if k != "digest"}) == meta["digest"]
    except Exception:  # e.g. a document nested too deep to re-encode
        ok = False
    if not ok:
        raise ValueError(f"{path} is damaged or was edited: its digest does not match its contents "
                         "(tensors and settings); start a fresh run or restore the file from a copy.")
    return meta, tensors


def _setting_changes(meta: dict, config) -> list[str]:
    """The settings of this run that differ from the checkpoint's, as 'name=old, this run has new'."""
    then, now = meta["config"], json.loads(json.dumps(asdict(config)))
    changes = []
    for key in sorted(set(then) | set(now), key=lambda k: (k not in now, k)):
        if key in RESUMABLE_CHANGES or (key == "seed" and not now.get("validation_fraction")):
            continue  # without a validation split the seed's draws all come from the checkpoint
        old, new = then.get(key, "(unset)"), now.get(key, "(unset)")
        if old != new:
            why = " (the seed picks the validation rows)" if key == "seed" else ""
            changes.append(f"{key}={old!r}, this run has {new!r}{why}")
    return changes


def _model_changes(meta: dict, tensors: dict, model) -> list[str]:
    """How this run's model differs from the checkpoint's: its parts, or its weights' names,
    shapes and dtypes (early stopping's best weights included)."""
    then, now = meta["model"], _model_description(model)
    changes = [f"{name} was {then.get(name, '(absent)')}, this run has {now.get(name, '(absent)')}"
               for name in sorted(set(then) | set(now), key=lambda k: (k not in now, k))
               if then.get(name) != now.get(name)]
    state = model.state_dict()

    def describe(t):
        return "absent" if t is None else f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"

    for prefix in ("model.", "best."):
        saved = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if prefix == "best." and not saved:
            continue
        for name in sorted(set(saved) | set(state)):
            old, new = saved.get(name), state.get(name)
            if old is None or new is None or old.shape != new.shape or old.dtype != new.dtype:
                changes.append(f"weight {prefix}{name} was {describe(old)}, this run has {describe(new)}")
    return changes


def _check_history(epoch, history) -> None:
    """One record per epoch, numbered from 1, of finite numbers (the loop reads them back)."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not isinstance(history, list) or len(history) != epoch:
        raise ValueError(f"epoch {epoch!r} does not fit a history of "
                         f"{len(history) if isinstance(history, list) else type(history).__name__} epochs")
    for i, record in enumerate(history):
        if (not isinstance(record, dict) or record.get("epoch") != i + 1 or "loss" not in record
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in record.values())):
            raise ValueError(f"history record {i + 1} is not a record of epoch {i + 1}: {record!r}")


# How an optimiser computes its step (which kernel), not what the step is: a checkpoint
# resumes on a machine or PyTorch with another kernel and keeps this process's choice.
_KERNEL_KEYS = ("fused", "foreach", "capturable", "differentiable")


def _check_optimizer_state(meta: dict, tensors: dict, optimizer) -> None:
    """The parameter groups are this optimiser's (the schedule's learning rates aside), and
    every per-parameter state entry belongs to one of its parameters and has its shape."""
    groups = meta["optimizer"]["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise ValueError(f"{len(groups) if isinstance(groups, list) else groups!r} optimiser parameter groups, "
                         f"this optimiser has {len(optimizer.param_groups)}")
    for saved, group in zip(groups, optimizer.param_groups):
        now = json.loads(json.dumps({k: v for k, v in group.items() if k != "params"}))
        differ = sorted(k for k in set(saved) | set(now) if k not in ("params", "lr", "initial_lr", *_KERNEL_KEYS)
                        and saved.get(k) != now.get(k))
        lr = saved.get("lr")
        if differ or isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"optimiser settings {differ or ['lr']} differ from this optimiser's")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for idx, entries in meta["optimizer"]["state"].items():
        if not idx.isdigit() or int(idx) >= len(params):
            raise ValueError(f"optimiser state for parameter {idx!r}, but the optimiser has {len(params)}")
        for key, value in entries.items():
            if value != "tensor" and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"optimiser state {idx}.{key} is {value!r}, neither a tensor nor a number")
            if value == "tensor":
                t = tensors[f"optim.{idx}.{key}"]
                if t.ndim and t.shape != params[int(idx)].shape:
                    raise ValueError(f"optimiser state optim.{idx}.{key} is {tuple(t.shape)}, its parameter "
                                     f"{tuple(params[int(idx)].shape)}")


def _restore(meta, tensors, model, optimizer, scheduler, generator, stopper) -> tuple[int, list]:
    epoch, history = meta["epoch"], meta["history"]
    _check_history(epoch, history)
    _check_optimizer_state(meta, tensors, optimizer)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    device = next(model.parameters()).device
    opt_meta = meta["optimizer"]
    state = {}
    for idx, entries in opt_meta["state"].items():
        state[int(idx)] = {key: (tensors[f"optim.{idx}.{key}"].to(device) if val == "tensor" else val)
                           for key, val in entries.items()}
    kernels = [{k: g[k] for k in _KERNEL_KEYS if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    for group, kernel in zip(optimizer.param_groups, kernels):
        group.update(kernel)
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
    return epoch, list(history)


def load_checkpoint(path, model, optimizer, scheduler, generator, stopper, *, config=None):
    """Restore what :func:`save_checkpoint` wrote; returns (epoch, history).

    The digest is checked first, then the checkpoint's model against ``model`` (its parts,
    and its weights' names, shapes and dtypes) and, given this run's ``config``, its
    settings against the checkpoint's: any difference but those in RESUMABLE_CHANGES is a
    ValueError naming each changed setting. Any other failure is a ValueError naming the file.
    """
    meta, tensors = _read_checkpoint(path)
    changes = (_setting_changes(meta, config) if config is not None else []) + _model_changes(meta, tensors, model)
    if changes:
        raise ValueError(f"checkpoint {path} was written with " + "; ".join(changes)
                         + ". Start a fresh run (another checkpoint_path, or resume=False) or restore the "
                         + ("setting." if len(changes) == 1 else "settings."))
    try:
        return _restore(meta, tensors, model, optimizer, scheduler, generator, stopper)
    except Exception as exc:  # anything at all: one kind of error, naming the file
        raise ValueError(f"{path} is not a restorable aekit checkpoint: {type(exc).__name__}: {exc}") from exc
