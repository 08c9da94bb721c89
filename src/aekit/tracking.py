"""Experiment tracking: callbacks that the training loop calls once per epoch.

    est.fit(X, callback=aekit.tracking.TensorBoardCallback("runs/tb"))
    aekit fit --data digits --out runs/d --track tensorboard     # or --track mlflow

The loop (:func:`aekit.train.train`) calls ``callback(record)`` after every epoch with the
epoch's history record — every loss term ('recon', each penalty, 'loss'), 'val_loss' when
there is a validation split, 'lr' and 'time' — and stops early when it returns True. In
data-parallel training rank 0 alone calls it, with the terms of the global batches. A
:class:`Tracker` adds what a tracking service wants around that: the run's parameters
(:meth:`Tracker.log_params`), the final metrics (:meth:`Tracker.log_metrics`) and
:meth:`Tracker.close`. :class:`MLflowCallback` and :class:`TensorBoardCallback` implement it
over MLflow and TensorBoard, optional packages imported when the tracker is made
(``pip install 'aekit[mlflow]'`` / ``'aekit[tensorboard]'``).
"""

from __future__ import annotations

import math
import numbers


def _numbers(record: dict) -> dict:
    """The finite numeric entries of a record (the epoch number aside)."""
    return {k: float(v) for k, v in record.items()
            if k != "epoch" and isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)}


class Tracker:
    """The callback interface: ``tracker(record)`` per epoch, then ``log_metrics`` and
    ``close``. Subclasses implement :meth:`log_epoch` (and may the others)."""

    def __call__(self, record: dict) -> bool:
        self.log_epoch(int(record.get("epoch", 0)), _numbers(record))
        return False  # a tracker never stops training

    def log_epoch(self, epoch: int, values: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_params(self, params: dict) -> None:
        """The run's settings (once, before or after training)."""

    def log_metrics(self, metrics: dict) -> None:
        """The run's final metrics (numbers only)."""

    def close(self) -> None:
        """Flush and end the run."""


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this tracker needs the optional package {module.split('.')[0]!r}: "
                          f"pip install 'aekit[{extra}]'.") from None


class TensorBoardCallback(Tracker):
    """Scalars ``train/NAME`` per epoch and ``final/NAME`` in event files under ``log_dir``
    (``tensorboard --logdir LOG_DIR`` shows them)."""

    def __init__(self, log_dir):
        _require("tensorboard", "tensorboard")
        tb = _require("torch.utils.tensorboard", "tensorboard")
        self.log_dir = str(log_dir)
        self.writer = tb.SummaryWriter(log_dir=self.log_dir)

    def log_epoch(self, epoch, values):
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, epoch)

    def log_params(self, params):
        self.writer.add_text("params", "\n".join(f"{k} = {v!r}" for k, v in sorted(params.items())))

    def log_metrics(self, metrics):
        for name, value in _numbers(metrics).items():
            self.writer.add_scalar(f"final/{name}", value, 0)

    def close(self):
        self.writer.flush()
        self.writer.close()


class MLflowCallback(Tracker):
    """Each epoch's terms as MLflow metrics (step = epoch), the settings as parameters, the
    final metrics as ``final_NAME``, in one MLflow run (started on creation and ended by
    :meth:`close`). ``tracking_uri`` defaults to MLflow's own (``$MLFLOW_TRACKING_URI`` or ./mlruns)."""

    def __init__(self, experiment: str | None = None, run_name: str | None = None, tracking_uri: str | None = None):
        self.mlflow = _require("mlflow", "mlflow")
        if tracking_uri:
            self.mlflow.set_tracking_uri(tracking_uri)
        if experiment:
            self.mlflow.set_experiment(experiment)
        self.run = self.mlflow.start_run(run_name=run_name)

    def log_epoch(self, epoch, values):
        self.mlflow.log_metrics(values, step=epoch)

    def log_params(self, params):
        self.mlflow.log_params({k: repr(v) if not isinstance(v, (int, float, str)) else v for k, v in params.items()})

    def log_metrics(self, metrics):
        self.mlflow.log_metrics({f"final_{k}": v for k, v in _numbers(metrics).items()})

    def close(self):
        self.mlflow.end_run()


TRACKERS = {"tensorboard": TensorBoardCallback, "mlflow": MLflowCallback}
