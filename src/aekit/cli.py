"""The ``aekit`` command line: fit a model and write a report, encode, reconstruct, restore images, list data sets.

    aekit fit --data digits --model ae --out runs/digits
    aekit encode --model runs/digits --input X.npy --output codes.npy
    aekit reconstruct --model runs/digits --input X.csv --output X_hat.csv
    aekit tangents --model runs/digits --input X.npy --k 3 --out tangents/
    aekit restore --model runs/inpaint --input damaged/ --mask masks/ --output restored/
    aekit datasets
    aekit fit --data 20newsgroups --model hash --bits 32 --out runs/news
    aekit search --model runs/news --query "the shuttle launch was delayed" --k 10
    aekit anomalies --data table.csv --out runs/anomalies --contamination 0.05 --labels label

The CLI holds no maths: it parses options, calls :mod:`aekit.data`, the estimators and
:mod:`aekit.report`, and writes every file atomically; a run folder is replaced whole or not
at all (see :func:`run_folder`). Bad input prints one line, ``aekit: error: ...``, and exits
with status 2; Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import __version__
from .apps.tangents import TANGENTS_OF

# --model NAME -> (module, class name). Imported lazily: `aekit --help` stays fast.
MODELS = {
    "ae": ("aekit.estimators", "Autoencoder"),
    "dae": ("aekit.estimators", "DenoisingAutoencoder"),
    "sae": ("aekit.estimators", "SparseAutoencoder"),
    "cae": ("aekit.estimators", "ContractiveAutoencoder"),
    "vae": ("aekit.estimators", "VAE"),
    "conv": ("aekit.estimators", "ConvAutoencoder"),
    "pca": ("aekit.linear", "PCA"),
    "linear": ("aekit.estimators", "LinearAutoencoder"),
    "fa": ("aekit.linear", "FactorAnalysis"),
    "sparse-coding": ("aekit.linear", "SparseCoding"),
    "classifier": ("aekit.supervised", "AutoencoderClassifier"),
    "hash": ("aekit.apps.hashing", "SemanticHasher"),
}
SMALL_PROBLEM = 2e6  # n_train * n_features at or below which --threads defaults to 1

# The CLI's own defaults, used when an option is not given and the model takes the parameter.
# Chosen so that `aekit fit --data digits --out DIR` trains in seconds with a good result;
# everything else keeps the estimator's default.
COMMON_DEFAULTS = {"validation_fraction": 0.1}
MODEL_DEFAULTS = {
    "ae": {"n_components": 16, "hidden_layer_sizes": (256,), "epochs": 100, "batch_size": 64},
    "dae": {"n_components": 16, "hidden_layer_sizes": (256,), "epochs": 100, "batch_size": 64},
    "sae": {"n_components": 64, "hidden_layer_sizes": (256,), "epochs": 100, "batch_size": 64},
    "cae": {"n_components": 16, "hidden_layer_sizes": (256,), "epochs": 100, "batch_size": 64},
    "vae": {"n_components": 2, "hidden_layer_sizes": (256, 128), "epochs": 100, "batch_size": 64},
    "conv": {"n_components": 16, "epochs": 30, "batch_size": 64},
    "linear": {"n_components": 16, "epochs": 100, "batch_size": 64},
    "pca": {"n_components": 100},  # capped at min(n_train, n_features) below
    "fa": {"n_components": 16},
    "sparse-coding": {"n_components": 100, "alpha": 0.2},
    "classifier": {"validation_fraction": 0.0},  # a validation split would take labelled rows away
}



def _option_kwargs(setting) -> dict:
    """argparse keywords for a declared setting."""
    if setting.kind == "bool":
        return dict(action=argparse.BooleanOptionalAction)
    if setting.kind == "choice":
        return dict(choices=tuple("none" if c is None else c for c in setting.choices), metavar="{" + ",".join(
            "none" if c is None else c for c in setting.choices) + "}")
    if setting.kind == "sizes":
        return dict(type=int, nargs="+" if setting.min_len else "*", metavar="N")
    if setting.kind in ("int", "float"):
        return dict(type=int if setting.kind == "int" else float, metavar="N" if setting.kind == "int" else "X")
    return dict(metavar="VALUE")


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) or "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _defaults_text(param: str) -> str:
    """The default each model uses for ``param`` (its class default or the CLI's), as words."""
    per_model = {}
    for model in MODELS:
        accepted = _estimator_class(model)._param_defaults
        if param in accepted:
            per_model[model] = {**accepted, **COMMON_DEFAULTS, **MODEL_DEFAULTS.get(model, {})}[param]
    values = list(per_model.values())
    common = max(set(map(_show, values)), key=[_show(v) for v in values].count)
    others = [f"{m} {_show(v)}" for m, v in per_model.items() if _show(v) != common]
    return f"default: {common}" + (f"; {', '.join(others)}" if others else "") + "; models " + "/".join(per_model)


def model_options():
    """The declared settings that `aekit fit` offers: (setting, argparse keywords)."""
    from .settings import SETTINGS

    taken = set().union(*(_estimator_class(m)._param_defaults for m in MODELS))
    return [(s, _option_kwargs(s)) for s in SETTINGS.values() if s.cli and s.name in taken]


class UserError(ValueError):
    """Bad input from the command line: printed as one line, exit status 2."""


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model options (from aekit.settings; each passed only to the models that take it)")
    for setting, kwargs in model_options():
        g.add_argument(setting.option, *setting.aliases, dest=setting.name, default=argparse.SUPPRESS,
                       help=f"{setting.help} ({_defaults_text(setting.name)})".replace("%", "%%"), **kwargs)


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)


def _threads_option(p) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice)")


def _device_option(p) -> None:
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where the loaded model computes: cpu, cuda, mps or auto (default: the device it was fitted "
                        "on; a model fitted on a GPU needs --device cpu on a machine without one)")


def _data_dir_option(p) -> None:
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder of the named data sets (default: $AEKIT_DATA or ~/.cache/aekit)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aekit", formatter_class=_Formatter,
        description="aekit: the autoencoder family on PyTorch, from PCA to VAEs.",
        epilog="Run 'aekit VERB --help' for the options of each verb.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    fit = sub.add_parser(
        "fit", formatter_class=_Formatter, help="train a model; write the model, metrics.json and report.html",
        description="Train a model on a data set and write DIR/model.safetensors, DIR/metrics.json "
                    "(test reconstruction error, per-epoch history, wall time) and a self-contained "
                    "DIR/report.html. Launched as 'torchrun --nproc-per-node N -m aekit fit ...' (add "
                    "torchrun's --nnodes/--rdzv-* flags for several machines) it trains data-parallel with "
                    "--batch-size as the global batch; rank 0 alone writes the files.",
        epilog="models: " + ", ".join(f"{k} ({v[1]})" for k, v in MODELS.items()))
    fit.add_argument("--data", default="digits", metavar="NAME_OR_PATH",
                     help="a data set name (see 'aekit datasets') or a .npy/.npz/.csv/.tsv file or a folder of "
                          "images (default: digits)")
    fit.add_argument("--model", default="ae", choices=tuple(MODELS), metavar="MODEL",
                     help="the model: " + ", ".join(MODELS) + " (default: ae)")
    fit.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed; a previous run in it is replaced whole; a folder "
                          "holding anything else is refused)")
    fit.add_argument("--test-fraction", type=float, default=0.2, metavar="F",
                     help="fraction of the rows held out for testing, for data sets without an official "
                          "test split (default: 0.2)")
    fit.add_argument("--label-column", default=None, metavar="COLUMN",
                     help="for a CSV/TSV --data file: the column (name or index) holding labels, used to colour "
                          "the code map (default: none, every column is a feature)")
    _data_dir_option(fit)
    fit.add_argument("--seed", type=int, default=0, help="random seed of the split and the model (default: 0)")
    fit.add_argument("--threads", type=int, default=None, metavar="N",
                     help="CPU threads for torch (torch.set_num_threads). Default: 1 for small data sets "
                          f"(n_train x n_features <= {SMALL_PROBLEM:.0e}, where threads cost more than they "
                          "save), else torch's choice")
    fit.add_argument("--labels", type=int, default=None, metavar="N",
                     help="--model classifier: keep the labels of N training rows (the same number per class, "
                          "drawn with --seed) and mark the others unlabelled (-1) (default: all labels)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    fit.add_argument("--out-of-core", default="auto", choices=("auto", "yes", "no"),
                     help="read a .npy --data file (or a folder of .npy shards) batch by batch from a memory map "
                          "instead of loading it: 'auto' does so for folders of .npy shards and files over 1 GiB "
                          "(default: auto)")
    fit.add_argument("--track", default=None, choices=("mlflow", "tensorboard"),
                     help="log every epoch's loss terms and the final metrics to MLflow (to $MLFLOW_TRACKING_URI "
                          "or ./mlruns) or TensorBoard event files (in --track-dir); needs aekit[mlflow] or "
                          "aekit[tensorboard] (default: none)")
    fit.add_argument("--track-dir", default=None, metavar="DIR",
                     help="--track tensorboard: the log folder (default: tensorboard/ beside --out, one "
                          "subfolder per run); --track mlflow: the tracking URI (default: MLflow's own)")
    _add_model_options(fit)

    for verb, what in (("encode", "codes h = f(x)"), ("reconstruct", "reconstructions x̂ = g(f(x))")):
        p = sub.add_parser(verb, formatter_class=_Formatter, help=f"write the {what} of the rows of a file",
                           description=f"Load a fitted model and write the {what} of every row of the input file.")
        p.add_argument("--model", required=True, metavar="PATH",
                       help="a run folder written by 'aekit fit' (holding model.safetensors) or a .safetensors file")
        p.add_argument("--input", required=True, metavar="FILE",
                       help="the rows to process: .npy, .npz, .csv or .tsv (all rows are used, none held out)")
        p.add_argument("--output", required=True, metavar="FILE",
                       help="where to write the result: .npy or .csv, chosen by the extension")
        _threads_option(p)
        _device_option(p)

    ex = sub.add_parser("export", formatter_class=_Formatter, help="export a fitted model's encoder and decoder to ONNX",
                        description="Write OUT/encoder.onnx (x -> code; a VAE's mean and logvar) and OUT/decoder.onnx "
                                    "(code -> reconstruction), float32 with a dynamic batch size, for onnxruntime. "
                                    "Needs aekit[onnx].")
    ex.add_argument("--model", required=True, metavar="PATH",
                    help="a run folder written by 'aekit fit' (holding model.safetensors) or a .safetensors file")
    ex.add_argument("--format", default="onnx", choices=("onnx",), help="the format (default: onnx)")
    ex.add_argument("--out", required=True, metavar="DIR", help="the folder to write encoder.onnx and decoder.onnx to")
    ex.add_argument("--exporter", default="dynamo", choices=("dynamo", "torchscript"),
                    help="PyTorch's ONNX exporter: dynamo (torch.export, the supported one) or torchscript (the "
                         "legacy tracer, faster) (default: dynamo)")
    _device_option(ex)
    tg = sub.add_parser(
        "tangents", formatter_class=_Formatter,
        help="write the manifold tangents the encoder reads at each input row (PNG grid + .npy)",
        description="Load a fitted neural autoencoder and write, for every row of the input file, the top-k right "
                    "singular vectors of the encoder's Jacobian ∂h/∂x (the input directions the code is most "
                    "sensitive to: for a contractive autoencoder, the tangents of the data manifold), or with "
                    "--of reconstruction the top-k left singular vectors of the reconstruction's Jacobian "
                    "∂g(f(x))/∂x (the directions the model's reconstructed manifold runs along). Writes "
                    "DIR/tangents.npy (n, k, C, H, W) for image models, else (n, k, d); DIR/singular_values.npy "
                    "(n, k); DIR/tangents.png (the first rows and their tangents). With --local-pca FILE also "
                    "local PCA's tangents from the rows of FILE (DIR/local_pca_tangents.npy, beside the encoder's "
                    "in the PNG).")
    tg.add_argument("--model", required=True, metavar="PATH",
                    help="a run folder written by 'aekit fit' (holding model.safetensors) or a .safetensors file")
    tg.add_argument("--input", required=True, metavar="FILE",
                    help="the points: .npy, .npz, .csv or .tsv, one flattened row per point")
    tg.add_argument("--k", type=int, default=3, metavar="K", help="tangents per point (default: 3)")
    tg.add_argument("--of", default="encoder", choices=TANGENTS_OF,
                    help="whose Jacobian: the encoder's ∂h/∂x or the reconstruction's ∂g(f(x))/∂x (default: encoder)")
    tg.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed; the files named "
                    "above are replaced)")
    tg.add_argument("--local-pca", default=None, metavar="FILE",
                    help="training rows (.npy, .npz, .csv, .tsv) for local PCA's tangents, for comparison")
    tg.add_argument("--neighbors", type=int, default=10, metavar="N",
                    help="--local-pca: neighbours of each point whose principal directions are taken (default: 10)")
    _threads_option(tg)
    _device_option(tg)
    rs = sub.add_parser(
        "restore", formatter_class=_Formatter, help="restore damaged images with a fitted autoencoder",
        description="Load a fitted autoencoder (trained with the damage as its --noise: gaussian/salt-and-pepper for "
                    "denoise, blocks/center-block for inpaint, watermark, grayscale for colorize) and restore images. "
                    "PNG in, PNG out (pixel values scaled to [0, 1]); .npy in, .npy out (images (N, H, W), "
                    "(N, H, W, C), (N, C, H, W) or flat rows, in the model's value range). Files are written "
                    "atomically.",
        epilog="example: aekit fit --data mnist --model conv --noise blocks --noise-level 0.25 --out runs/inpaint; "
               "aekit restore --model runs/inpaint --input damaged.npy --mask mask.npy --output restored.npy")
    rs.add_argument("--model", required=True, metavar="PATH",
                    help="a run folder written by 'aekit fit' (holding model.safetensors) or a .safetensors file")
    rs.add_argument("--input", required=True, metavar="FILE_OR_FOLDER",
                    help="a .npy array of images, a .png image, or a folder of .png images")
    rs.add_argument("--output", required=True, metavar="PATH",
                    help="where to write: a .npy file for .npy input, a .png file for a .png, a folder for a folder")
    rs.add_argument("--mask", default=None, metavar="FILE_OR_FOLDER",
                    help="the unknown pixels (True/1, or white in a PNG): a .npy of the images' shape or (N, H, W), a "
                         ".png, or a folder of .png files named as the inputs. Needed by --task inpaint; with "
                         "--task watermark the marked pixels are inpainted and all others kept")
    rs.add_argument("--task", default=None, choices=("denoise", "inpaint", "watermark", "colorize"),
                    help="what to undo (default: inpaint when --mask is given, else denoise)")
    rs.add_argument("--max-iter", type=int, default=100, metavar="N",
                    help="inpainting: most iterations (default: 100)")
    rs.add_argument("--tol", type=float, default=1e-4, metavar="X",
                    help="inpainting: stop when no unknown pixel changes by more than X times the value range "
                         "(default: 1e-4)")
    _threads_option(rs)
    _device_option(rs)
    se = sub.add_parser(
        "search", formatter_class=_Formatter, help="the training documents nearest a query, by Hamming distance",
        description="Load a hashing run (aekit fit --model hash), hash the query and print the nearest training "
                    "documents: rank, Hamming distance between codes, label and the document's first words.")
    se.add_argument("--model", required=True, metavar="DIR", help="a run folder written by 'aekit fit --model hash'")
    what = se.add_mutually_exclusive_group()
    what.add_argument("--query", default=None, metavar="TEXT", help="the query text (runs on documents)")
    what.add_argument("--query-file", default=None, metavar="FILE",
                      help="a text file holding the query (runs on documents), or a .npy/.npz/.csv/.tsv file whose "
                           "rows are queries (runs on other data)")
    se.add_argument("--k", type=int, default=10, metavar="K", help="how many documents to list per query (default: 10)")
    _device_option(se)

    an = sub.add_parser(
        "anomalies", formatter_class=_Formatter, help="score every row of a data set for anomaly; flag and explain",
        description="Fit aekit.AnomalyDetector on every row of the data and write DIR/scores.csv (row, score, "
                    "decision, flagged, and the label when --labels is given), DIR/flagged.csv (the flagged rows, "
                    "most anomalous first, their row number first), DIR/model.safetensors, DIR/metrics.json and "
                    "DIR/report.html (score histogram with the threshold, the top anomalies and which features "
                    "make their error, ROC and precision-recall curves when labels are given).",
        epilog="Scores: higher = more normal (scikit-learn's convention); a row is flagged when its score is "
               "below the threshold set by --contamination.")
    an.add_argument("--data", required=True, metavar="NAME_OR_PATH",
                    help="a .csv/.tsv/.npy/.npz file, a folder of images, or a data set name (all of its rows, "
                         "training and test, are scored)")
    an.add_argument("--out", required=True, metavar="DIR", help="output folder (as for 'aekit fit')")
    an.add_argument("--contamination", default="auto", type=_contamination, metavar="F",
                    help="expected fraction of anomalies, in (0, 0.5], or 'auto' (Tukey's fence on the "
                         "reconstruction errors) (default: auto)")
    an.add_argument("--labels", default=None, metavar="COLUMN",
                    help="for a CSV/TSV file: the column (name or index) of known labels, non-zero = anomaly; it is "
                         "not a feature, and gives ROC and precision-recall curves")
    _data_dir_option(an)
    an.add_argument("--seed", type=int, default=0, help="random seed of the model (default: 0)")
    _threads_option(an)
    an.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")

    ds = sub.add_parser("datasets", formatter_class=_Formatter, help="list the named data sets and where they are cached",
                        description="List the named data sets, their sizes and the folder where each is cached.")
    _data_dir_option(ds)
    return parser


# -- helpers ------------------------------------------------------------------------------
def _contamination(text: str):
    """--contamination: 'auto' or a number (its range is checked by the detector's setting)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number in (0, 0.5]; got {text!r}") from None


def _estimator_class(model: str):
    import importlib

    module, name = MODELS[model]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"--model {model} is not available in this installation ({exc}).") from None


def _flag(param: str) -> str:
    from .settings import SETTINGS

    return SETTINGS[param].option if param in SETTINGS else param


def _convert(param: str, value):
    from .settings import SETTINGS

    if SETTINGS[param].kind == "choice" and value == "none":
        return None
    if isinstance(value, list):
        return tuple(value)
    return value


def estimator_params(model: str, given: dict, *, seed: int, quiet: bool, accepted) -> dict:
    """The keyword arguments for the estimator of ``model``: options given on the command
    line (an error when the model lacks the parameter), then the CLI's defaults for the
    parameters the model takes."""
    cls_params = set(accepted)
    unknown = [p for p in given if p not in cls_params]
    if unknown:
        flags = ", ".join(_flag(p) for p in unknown)
        takes = sorted(s.option for s, _ in model_options() if s.name in cls_params)
        raise UserError(f"{flags} {'does' if len(unknown) == 1 else 'do'} not apply to --model {model}; "
                        f"it takes {', '.join(takes) or 'no model options'}.")
    params = {p: _convert(p, v) for p, v in given.items()}
    if params.get("early_stopping") and "validation_fraction" not in params:
        params["validation_fraction"] = 0.1
    for p, v in {**COMMON_DEFAULTS, **MODEL_DEFAULTS.get(model, {})}.items():
        if p in cls_params and p not in params:
            params[p] = v
    if "random_state" in cls_params:
        params["random_state"] = seed
    if "verbose" in cls_params:
        params["verbose"] = not quiet
    return params


def _jsonable(value):
    """numpy scalars/arrays, tuples and non-finite floats made JSON-safe."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _set_threads(n) -> None:
    if n is None:
        return
    import torch

    torch.set_num_threads(n)


def _check_threads(n) -> None:
    if n is not None and n < 1:
        raise UserError(f"--threads must be an integer >= 1; got {n}.")


def _text(value) -> str:
    """``value`` as text that can be written as UTF-8: bytes of a non-UTF-8 file name (which
    Python carries as lone surrogates) become ``\\xNN``."""
    value = str(value)
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


# -- the run folder -----------------------------------------------------------------------
# A run is written into a fresh temporary folder beside --out (same parent, so renames are
# atomic) and then moved into place, under an exclusive lock on a file beside --out: a reader
# sees the previous complete run or the new complete run, never a mix, and a failure or a
# kill leaves the previous run in place. Temporaries are named .<name>.tmp-<pid>-<random>;
# the previous run is moved aside as .<name>.old-<pid>-<random> while the new one moves in.
RUN_FILES = ("model.safetensors", "metrics.json", "report.html", "search.json", "scores.csv", "flagged.csv")
_RUN_MARKERS = ("model.safetensors", "metrics.json")


def _side_name(out: Path) -> str:
    """The prefix of the lock file and temporaries of ``out``: ``.<name>``, shortened with a
    hash when long, so that the temporaries' names stay within the file system's limit."""
    raw = out.name.encode("utf-8", "surrogateescape")
    if len(raw) <= 100:
        return "." + out.name
    short = raw[:60].decode("utf-8", "surrogateescape")
    return f".{short}-{hashlib.sha256(raw).hexdigest()[:16]}"


def _out_path(given: str) -> Path:
    """--out as an absolute path; a symbolic link to a folder means that folder."""
    path = Path(os.path.abspath(given))
    if os.path.islink(path):
        if not os.path.exists(path):
            raise UserError(f"--out {_text(given)} is a broken symbolic link.")
        path = Path(os.path.realpath(path))
    if path.parent == path:
        raise UserError(f"--out {_text(given)} is the root folder; give a folder for the run.")
    with contextlib.suppress(OSError):
        if Path.cwd().is_relative_to(path):
            raise UserError(f"--out {_text(given)} holds the current folder; give a new folder for the run.")
    return path


def _check_out(out: Path, shown: str) -> None:
    """Refuse an --out that cannot take a run, or that holds something other than a run."""
    try:
        os.stat(out)  # raises for a name too long, a parent that is a file, ...
    except FileNotFoundError:
        return  # created when the run is written
    except NotADirectoryError:
        raise UserError(f"--out {_text(shown)}: a parent of it is a file, not a folder.") from None
    if not os.path.isdir(out):
        raise UserError(f"--out {_text(shown)} exists and is not a folder.")
    entries = sorted(os.listdir(out))
    if not entries:
        return
    if not set(entries) & set(_RUN_MARKERS):
        raise UserError(f"--out {_text(shown)} is a folder that does not hold an aekit run (no model.safetensors "
                        "or metrics.json); refusing to replace it. Give a new or empty folder.")
    foreign = [e for e in entries if e not in RUN_FILES]
    if foreign:
        listed = ", ".join(_text(e) for e in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise UserError(f"--out {_text(shown)} holds files that are not part of an aekit run ({listed}); "
                        "refusing to replace them. Move them away or give another folder.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def _tidy(out: Path) -> None:
    """Remove the temporaries of writers that died (kill -9, power loss). A previous run that a
    dead writer had moved aside goes back in place when --out is missing. Called under the
    lock, which every writer holds while its temporaries exist, so a live writer's are never
    seen here; the pid test is a second guard (a lock file removed by hand)."""
    side = _side_name(out)
    pattern = re.compile(re.escape(side) + r"\.(tmp|old)-(\d+)-.+")
    found = []
    for entry in os.listdir(out.parent):
        m = pattern.fullmatch(entry)
        if m and int(m.group(2)) != os.getpid() and not _alive(int(m.group(2))):
            found.append((m.group(1) != "old", entry))  # the aside runs first
    for _, entry in sorted(found):
        path = out.parent / entry
        if entry.startswith(side + ".old-") and not os.path.lexists(out):
            os.rename(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_in(tmp: Path, out: Path) -> None:
    """Move the complete run ``tmp`` to ``out``; a previous run there is moved aside first and
    deleted after, or put back if the move fails."""
    if not os.path.lexists(out):
        os.rename(tmp, out)
        return
    aside = out.parent / f"{_side_name(out)}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(out, aside)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def run_folder(out: Path, shown: str):
    """Yield a fresh temporary folder beside ``out`` to write a run into; when the block
    completes the run replaces ``out``; when it fails (or is interrupted) the temporary folder
    is removed and ``out`` is as it was. Concurrent writers to one ``out`` take turns."""
    import fcntl

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"--out {_text(shown)}: a parent of it is a file, not a folder.") from None
    with open(out.parent / f"{_side_name(out)}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file is closed or the process dies
        _tidy(out)
        _check_out(out, shown)  # again: it may have changed while the model trained
        tmp = Path(tempfile.mkdtemp(prefix=f"{_side_name(out)}.tmp-{os.getpid()}-", dir=out.parent))
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # as mkdir would make it, not mkdtemp's 0700
            yield tmp
            _fsync_dir(tmp)
            _swap_in(tmp, out)
            _fsync_dir(out.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after the swap; removes a failed run


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _with_threads(run, args) -> int:
    """run(args) with torch on ``args.threads`` threads (checked first), the count restored after:
    main() may run in-process (tests, notebooks), so torch is left as it was."""
    import torch

    threads_before = torch.get_num_threads()
    try:
        _check_threads(args.threads)
        _set_threads(args.threads)
        return run(args)
    finally:
        torch.set_num_threads(threads_before)


def _load_model(args):
    """The estimator saved at ``--model`` (a run folder or a .safetensors file) and its path."""
    from .io import load

    model_path = Path(args.model)
    if not model_path.exists():
        raise UserError(f"model not found: {model_path}")
    return load(model_path, device=getattr(args, "device", None)), model_path


# -- verbs --------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    import torch

    threads_before = torch.get_num_threads()
    try:
        return _fit(args)
    finally:  # main() may run in-process (tests, notebooks): leave torch as it was
        torch.set_num_threads(threads_before)


def _fit(args) -> int:
    t_start = time.perf_counter()
    given = {s.name: getattr(args, s.name) for s, _ in model_options() if hasattr(args, s.name)}
    _check_threads(args.threads)
    cls = _estimator_class(args.model)
    accepted = cls._param_defaults
    params = estimator_params(args.model, given, seed=args.seed, quiet=args.quiet, accepted=accepted)
    out = _out_path(args.out)
    _check_out(out, args.out)  # before training: a bad --out is reported at once

    import torch

    from . import io as aekit_io
    from . import report
    from .data import load_dataset
    from .data.rows import split_out_of_core, wants_out_of_core
    from .train import launched_ranks

    launched = launched_ranks()  # under torchrun: every rank trains, rank 0 alone writes
    rank = launched[0] if launched else 0
    if rank:
        args.quiet = True
        params["verbose"] = False
    source = None  # out-of-core training rows
    if (args.out_of_core == "yes" or (args.out_of_core == "auto" and Path(args.data).exists())) \
            and wants_out_of_core(args.data, args.out_of_core):
        source, dataset = split_out_of_core(args.data, args.test_fraction, args.seed)
    if source is None:
        dataset = load_dataset(args.data, data_dir=args.data_dir, test_fraction=args.test_fraction,
                               random_state=args.seed, label_column=args.label_column)
    dataset.name, dataset.source = _text(dataset.name), _text(dataset.source)  # a non-UTF-8 file name
    n_train, d = dataset.X_train.shape
    if source is not None:
        n_train = len(source)
    _set_threads(args.threads if args.threads is not None else (1 if n_train * d <= SMALL_PROBLEM else None))
    if "n_components" not in given and params.get("n_components") is not None:
        params["n_components"] = min(params["n_components"], n_train, d)  # the CLI's default fits the data
    if dataset.image_shape is not None and "image_shape" in accepted:
        params["image_shape"] = dataset.image_shape
    est = cls(**params)

    y_fit = _fit_labels(est, dataset, args)
    if source is not None and y_fit is not None:
        raise UserError(f"--model {args.model} learns from labels; out-of-core data (a .npy file read from disk) "
                        "have none. Use --out-of-core no.")
    tracker = _tracker(args, out) if rank == 0 else None
    fit_kwargs = {} if tracker is None else {"callback": tracker}
    if tracker is not None and y_fit is not None:
        raise UserError(f"--track applies to the autoencoders, not --model {args.model}.")
    t_fit = time.perf_counter()
    train_rows = dataset.X_train if source is None else source
    est.fit(train_rows, **fit_kwargs) if y_fit is None else est.fit(train_rows, y_fit)
    fit_seconds = time.perf_counter() - t_fit
    if launched and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # training's collectives are over
    if rank:
        return 0

    metrics = {
        "model": args.model, "estimator": type(est).__name__, "data": dataset.name, "data_source": dataset.source,
        "n_train": int(n_train), "n_test": int(dataset.X_test.shape[0]), "n_features": int(d),
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "n_components": int(getattr(est, "n_components_", 0) or 0) or None,
    }
    if y_fit is not None:
        metrics["n_labelled"] = int(np.sum(y_fit != -1))
    if getattr(est, "loss_", None) is not None:
        metrics["loss_function"] = est.loss_
    metrics.update(report.evaluate(est, dataset))
    history = getattr(est, "history_", None) or []
    metrics.update(fit_seconds=fit_seconds, epochs_run=len(history) or None)
    settings = {"data": _text(args.data), "model": args.model, "estimator": type(est).__name__,
                "test_fraction": args.test_fraction, "seed": args.seed,
                "threads": torch.get_num_threads(),
                **{k: v for k, v in est.get_params(deep=False).items() if k not in ("verbose", "checkpoint_path")}}
    with run_folder(out, args.out) as run_dir:  # all the files, or none
        aekit_io.save(est, run_dir / "model.safetensors")
        if hasattr(est, "train_codes_"):  # a hashing run: what `aekit search` shows beside the codes
            aekit_io.atomic_write_text(run_dir / "search.json", json.dumps(_jsonable(search_data(dataset))) + "\n")
        metrics["total_seconds"] = time.perf_counter() - t_start  # so far; updated below
        report.build_report(est, dataset, metrics, run_dir / "report.html", settings=settings, seed=args.seed)
        metrics["total_seconds"] = time.perf_counter() - t_start
        metrics.update(history=history, settings=settings,
                       versions={"aekit": __version__, "torch": torch.__version__, "numpy": np.__version__,
                                 "python": sys.version.split()[0]})
        aekit_io.atomic_write_text(run_dir / "metrics.json",
                                   json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")
    if tracker is not None:
        tracker.log_params(_jsonable(settings))
        tracker.log_metrics({k: v for k, v in metrics.items() if k not in ("history", "settings", "versions")})
        tracker.close()
    if not args.quiet:
        err = metrics.get("test_squared_error_per_example")
        base = metrics.get("baseline_test_squared_error_per_example")
        what = (f"test squared error per example {_num(err)} (predicting the training mean: {_num(base)})"
                if err is not None else
                f"training squared error per example {_num(metrics.get('train_squared_error_per_example'))}")
        hit = next((key for key in metrics if key.startswith("test_precision_at_")), None)
        if hit is not None and metrics[hit] is not None:
            what = (f"test precision@{hit.rsplit('_', 1)[1]} {metrics[hit]:.2%}, mAP "
                    f"{_num(metrics.get('test_mean_average_precision'))} (relevant = same label)")
        if metrics.get("test_accuracy") is not None:
            what = f"test accuracy {metrics['test_accuracy']:.2%} with {metrics.get('n_labelled')} labels; {what}"
        print(f"aekit: {type(est).__name__} on {dataset.name} in {fit_seconds:.1f}s; {what}; "
              f"wrote {_text(Path(args.out) / 'model.safetensors')}, metrics.json, report.html")
    return 0


def _tracker(args, out: Path):
    """The --track tracker, or None."""
    if args.track is None:
        return None
    from .tracking import TRACKERS

    try:
        if args.track == "tensorboard":
            log_dir = Path(args.track_dir) if args.track_dir else out.parent / "tensorboard"
            return TRACKERS["tensorboard"](log_dir / out.name)
        return TRACKERS["mlflow"](run_name=out.name, tracking_uri=args.track_dir)
    except ImportError as exc:
        raise UserError(str(exc)) from None


def _fit_labels(est, dataset, args):
    """The targets to fit a model that learns from labels (None for the others): the data
    set's labels, all or --labels N of them (balanced over classes, the rest -1)."""
    if not getattr(est, "_uses_labels", False):
        if args.labels is not None:
            raise UserError(f"--labels applies to --model classifier, not --model {args.model}.")
        return None
    if dataset.y_train is None:
        raise UserError(f"--model {args.model} needs a data set with labels; {dataset.name} has none "
                        "(for a CSV give --label-column).")
    y = np.asarray(dataset.y_train).astype(np.int64)
    if args.labels is None:
        return y
    classes = np.unique(y)
    if not classes.size <= args.labels <= y.size:
        raise UserError(f"--labels must be between the number of classes ({classes.size}) and the number of "
                        f"training rows ({y.size}); got {args.labels}.")
    rng = np.random.default_rng(args.seed)
    per_class = [args.labels // classes.size + (i < args.labels % classes.size) for i in range(classes.size)]
    keep = np.concatenate([rng.choice(np.nonzero(y == c)[0], min(k, int(np.sum(y == c))), replace=False)
                           for c, k in zip(classes, per_class)])
    out = np.full_like(y, -1)
    out[keep] = y[keep]
    return out


ARRAY_SUFFIXES = (".npy", ".npz", ".csv", ".tsv")


def read_rows(path) -> np.ndarray:
    """All rows of an input file (.npy, .npz, .csv, .tsv) as float32 (n, d); nothing held out."""
    from .data import load_dataset

    path = Path(path)
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise UserError(f"--input {path}: unsupported file type {path.suffix or '(none)'!r}; use .npy, .npz, .csv or .tsv.")
    if not path.is_file():
        raise UserError(f"input file not found: {path}")
    try:
        return load_dataset(path, test_fraction=0.0).X_train
    except ValueError as exc:
        raise UserError(f"--input {path}: {exc}") from None


def write_rows(path, A: np.ndarray) -> Path:
    """Write an array atomically as .npy or .csv (by the extension)."""
    from ._files import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        def write(tmp):
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(A), allow_pickle=False)
    elif suffix == ".csv":
        def write(tmp):
            np.savetxt(tmp, A, delimiter=",", fmt="%.9g")
    else:
        raise UserError(f"--output {path}: unsupported file type {suffix or '(none)'!r}; use .npy or .csv.")
    return atomic_write(path, write)


def cmd_apply(args) -> int:
    out_suffix = Path(args.output).suffix.lower()
    if out_suffix not in (".npy", ".csv"):
        raise UserError(f"--output {args.output}: unsupported file type {out_suffix or '(none)'!r}; use .npy or .csv.")
    return _with_threads(_apply, args)


def _apply(args) -> int:
    est, _ = _load_model(args)
    X = read_rows(args.input)
    try:
        result = est.transform(X) if args.verb == "encode" else est.reconstruct(X)
    except ValueError as exc:
        raise UserError(f"--input {args.input}: {exc}") from None
    write_rows(args.output, result)
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx

    est, _ = _load_model(args)
    try:
        paths = export_onnx(est, args.out, exporter=args.exporter)
    except (ImportError, TypeError) as exc:
        raise UserError(str(exc)) from None
    print(f"aekit: wrote {_text(paths['encoder'])} and {_text(paths['decoder'])}")
    return 0


TANGENT_FIGURE_ROWS = 10  # points drawn in tangents.png


def cmd_tangents(args) -> int:
    return _with_threads(_tangents, args)


def _run_image_shape(est, model_path: Path):
    """The image shape (C, H, W) of the model's rows: the estimator's own, else the one its
    run folder's metrics.json records, else None (rows are drawn as line plots)."""
    shape = getattr(est, "image_shape_", None)
    if shape:
        return tuple(int(v) for v in shape)
    metrics = model_path / "metrics.json" if model_path.is_dir() else model_path.parent / "metrics.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        shape = json.loads(metrics.read_text()).get("image_shape")
        if shape and math.prod(shape) == est.n_features_in_:
            return tuple(int(v) for v in shape)
    return None


def _tangents(args) -> int:
    from ._files import atomic_write
    from .apps.tangents import local_pca_tangents, tangents
    from .report.figures import tangents_figure

    if not Path(args.model).exists():
        raise UserError(f"model not found: {Path(args.model)}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {_text(args.out)} exists and is not a folder.")
    est, model_path = _load_model(args)
    if not hasattr(est, "model_"):
        raise UserError(f"--model {model_path}: a {type(est).__name__} has no encoder Jacobian; tangents need a neural "
                        "autoencoder (ae, dae, sae, cae, vae, conv, linear).")
    X = read_rows(args.input)
    try:
        T, s = tangents(est, X, args.k, of=args.of)
        T_pca = None
        if args.local_pca is not None:
            T_pca, _ = local_pca_tangents(read_rows(args.local_pca), X, args.k, args.neighbors)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    shape = _run_image_shape(est, model_path)
    layout = (X.shape[0], args.k, *(shape or (X.shape[1],)))

    def npy(array):
        def write(tmp):
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        return write

    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "tangents.npy", npy(T.reshape(layout)))
    atomic_write(out / "singular_values.npy", npy(s))
    sets = {args.of: T[:TANGENT_FIGURE_ROWS]}
    if T_pca is not None:
        atomic_write(out / "local_pca_tangents.npy", npy(T_pca.reshape(layout)))
        sets["local PCA"] = T_pca[:TANGENT_FIGURE_ROWS]
    png = tangents_figure(X[:TANGENT_FIGURE_ROWS], sets, shape, title=f"Top {args.k} tangents of {type(est).__name__}")

    def write_png(tmp):
        Path(tmp).write_bytes(png)

    atomic_write(out / "tangents.png", write_png)
    print(f"aekit: {args.k} tangents of {X.shape[0]} rows; wrote {_text(out / 'tangents.npy')}, singular_values.npy"
          + (", local_pca_tangents.npy" if T_pca is not None else "") + ", tangents.png")
    return 0


def _png_paths(path: Path, what: str) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        raise UserError(f"{what} {path}: the folder holds no .png files.")
    return files


def read_png(path: Path, channels: int) -> np.ndarray:
    """A PNG as float32 in [0, 1]: (H, W) for one channel, (H, W, 3) for three."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            return np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path}: not a readable PNG image ({exc}).") from None


def write_png(path: Path, image: np.ndarray) -> Path:
    """An image in [0, 1] ((H, W) or (H, W, 3)) written atomically as an 8-bit PNG."""
    from PIL import Image

    from ._files import atomic_write

    pixels = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def _read_images(path: Path, channels: int, what: str):
    """(array, kind, names): a .npy array, a .png as a batch of one, or a folder of .png files."""
    if path.is_dir():
        files = _png_paths(path, what)
        imgs = [read_png(f, channels) for f in files]
        if len({im.shape for im in imgs}) > 1:
            raise UserError(f"{what} {path}: the images have different sizes.")
        return np.stack(imgs), "folder", [f.name for f in files]
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".png":
        return read_png(path, channels)[None], "png", [path.name]
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False), "npy", None
        except (ValueError, OSError) as exc:
            raise UserError(f"{what} {path}: not a readable .npy file ({exc}).") from None
    raise UserError(f"{what} {path}: unsupported file type {suffix or '(none)'!r}; use .npy, .png or a folder of .png.")


def cmd_restore(args) -> int:
    return _with_threads(_restore, args)


def _restore(args) -> int:
    from .apps import restore

    est, model_path = _load_model(args)
    task = args.task or ("inpaint" if args.mask else "denoise")
    if task == "inpaint" and not args.mask:
        raise UserError("--task inpaint needs --mask (the unknown pixels).")
    if task in ("denoise", "colorize") and args.mask:
        raise UserError(f"--mask is not used by --task {task}; leave it out.")
    try:
        c = restore.model_image_shape(est)[0]
    except (TypeError, ValueError) as exc:
        raise UserError(f"--model {model_path}: {exc}") from None
    channels = 1 if task == "colorize" else c
    images, kind, names = _read_images(Path(args.input), channels, "--input")
    out = Path(args.output)
    wanted = {"npy": ".npy", "png": ".png"}.get(kind)
    if wanted and out.suffix.lower() != wanted:
        raise UserError(f"--output {out}: a {kind} input is written as {wanted}; got {out.suffix or '(none)'!r}.")
    if kind == "folder" and out.exists() and not out.is_dir():
        raise UserError(f"--output {out}: a folder input is written to a folder; {out} is a file.")
    mask = None
    if args.mask:
        mask, mask_kind, mask_names = _read_images(Path(args.mask), 1, "--mask")
        if kind == "folder" and (mask_kind != "folder" or mask_names != names):
            raise UserError(f"--mask {args.mask}: give a folder of .png masks with the same names as the inputs.")
        if mask_kind in ("png", "folder"):
            mask = mask > 0.5
    try:
        if task == "denoise":
            result = restore.denoise(est, images)
        elif task == "inpaint":
            result = restore.inpaint(est, images, mask, tol=args.tol, max_iter=args.max_iter)
        elif task == "watermark":
            result = restore.remove_watermark(est, images, mask, **(
                {"tol": args.tol, "max_iter": args.max_iter} if mask is not None else {}))
        else:
            result = restore.colorize(est, images)
    except (TypeError, ValueError) as exc:
        raise UserError(f"--input {args.input}: {exc}") from None
    if kind == "npy":
        write_rows(out, result)
    elif kind == "png":
        write_png(out, result[0])
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, img in zip(names, result):
            write_png(out / name, img)
    return 0


def search_data(dataset) -> dict:
    """What `aekit search` needs beside the model: the vocabulary (to count a query's words),
    the training rows' labels and label names, and the start of each training document."""
    return {"data": dataset.name, "vocabulary": dataset.vocabulary, "label_names": dataset.label_names,
            "labels": None if dataset.y_train is None else np.asarray(dataset.y_train).tolist(),
            "texts": dataset.texts_train}


def _read_search_data(folder: Path) -> dict:
    path = folder / "search.json"
    if not path.is_file():
        raise UserError(f"--model {_text(str(folder))} holds no search.json: give a run folder written by "
                        "'aekit fit --model hash'.")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {_text(str(path))}: {exc}") from None
    if not isinstance(info, dict) or not {"vocabulary", "label_names", "labels", "texts"} <= set(info):
        raise UserError(f"{_text(str(path))} is damaged: it lacks the vocabulary, labels or texts entries.")
    return info


def _queries(args, vocabulary) -> tuple[np.ndarray, list[str]]:
    """The query rows (word counts over ``vocabulary`` for text runs) and how to show each."""
    from .data.text import count_matrix, snippet

    if args.query is None and args.query_file is None:
        raise UserError("give the query: --query TEXT or --query-file FILE.")
    if vocabulary is None:
        if args.query is not None:
            raise UserError("--query TEXT needs a run on documents; this run's rows are not text: use --query-file "
                            "with a .npy/.npz/.csv/.tsv file of rows.")
        X = read_rows(args.query_file)
        return X, [f"row {i} of {_text(args.query_file)}" for i in range(X.shape[0])]
    if args.query is not None:
        text = args.query
    else:
        try:
            data = Path(args.query_file).read_bytes()
        except OSError as exc:
            raise UserError(f"--query-file: {_os_error(exc)}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    X = count_matrix([text], vocabulary)
    if not X.any():
        print("aekit: warning: none of the query's words is in the model's vocabulary; its code is that of an "
              "empty document.", file=sys.stderr)
    return X, [snippet(text, 120)]


def cmd_search(args) -> int:
    from .io import load

    folder = Path(args.model)
    if not folder.is_dir():
        raise UserError(f"--model {_text(args.model)}: not a run folder (give the --out folder of 'aekit fit --model hash').")
    info = _read_search_data(folder)
    est = load(folder, device=args.device)
    if not hasattr(est, "kneighbors") or not hasattr(est, "train_codes_"):
        raise UserError(f"--model {_text(args.model)} holds a {type(est).__name__}, not a hashing model.")
    if isinstance(args.k, bool) or args.k < 1:
        raise UserError(f"--k must be an integer >= 1; got {args.k}.")
    X, shown = _queries(args, info["vocabulary"])
    n_train = int(est.train_codes_.shape[0])
    k = min(args.k, n_train)
    try:
        dist, idx = est.kneighbors(X, k)
    except ValueError as exc:
        raise UserError(f"the query: {exc}") from None
    labels, names, texts = info["labels"], info["label_names"], info["texts"]
    for q in range(X.shape[0]):
        print(f"query: {shown[q]}")
        print(f"{'rank':>4}  {'distance':>8}  {'label':<24}  document")
        for r, (d, i) in enumerate(zip(np.asarray(dist[q]), np.asarray(idx[q])), start=1):
            i = int(i)
            label = "" if labels is None else (names[labels[i]] if names else str(labels[i]))
            doc = texts[i][:100] if texts else f"training row {i}"
            print(f"{r:>4}  {int(d):>8}  {label:<24}  {doc}")
    return 0


def cmd_anomalies(args) -> int:
    return _with_threads(_anomalies, args)


def _anomalies(args) -> int:
    t_start = time.perf_counter()
    out = _out_path(args.out)
    _check_out(out, args.out)

    from . import io as aekit_io
    from . import report
    from .apps.anomaly import AnomalyDetector, anomaly_labels, threshold_rows
    from .data import Dataset, load_dataset

    ds = load_dataset(args.data, data_dir=args.data_dir, test_fraction=0.0, label_column=args.labels)
    name, source = _text(ds.name), _text(ds.source)
    X = np.concatenate([ds.X_train, ds.X_test]) if ds.X_test.shape[0] else ds.X_train
    labels = None
    if args.labels is not None:
        labels = anomaly_labels(ds.y_train if not ds.X_test.shape[0] else np.concatenate([ds.y_train, ds.y_test]))
    det = AnomalyDetector(contamination=args.contamination, random_state=args.seed, verbose=not args.quiet)
    t_fit = time.perf_counter()
    det.fit(X)
    fit_seconds = time.perf_counter() - t_fit
    scores = det.score_samples(X)
    decision = scores - det.offset_
    flagged = threshold_rows(scores, det.offset_)
    # the report shows every row, with the anomaly labels (True = anomaly) when there are any
    view = Dataset(name=name, X_train=X, X_test=X[:0], y_train=None if labels is None else labels.astype(np.int64),
                   y_test=None, image_shape=ds.image_shape, value_range=ds.value_range, label_names=None, source=source)
    metrics = {"estimator": "AnomalyDetector", "data": name, "data_source": source, "n_rows": int(X.shape[0]),
               "n_features": int(X.shape[1]), "contamination": args.contamination,
               "architecture": det.architecture_, "n_components": det.n_components_, "fit_seconds": fit_seconds,
               "epochs_run": det.n_iter_}
    metrics.update(report.evaluate(det, view))
    settings = {"data": _text(args.data), "seed": args.seed, "threads": torch_threads(),
                **{k: v for k, v in det.get_params(deep=False).items() if k not in ("verbose", "checkpoint_path")}}
    table = [np.arange(X.shape[0]), scores, decision, (decision < 0).astype(np.int64)]
    header = "row,score,decision,flagged"
    if labels is not None:
        table.append(labels.astype(np.int64))
        header += ",label"
    with run_folder(out, args.out) as run_dir:
        from ._files import atomic_write

        atomic_write(run_dir / "scores.csv", lambda tmp: np.savetxt(
            tmp, np.column_stack(table), delimiter=",", fmt=["%d", "%.9g", "%.9g", "%d"] + (["%d"] if labels is not None else []),
            header=header, comments=""))
        atomic_write(run_dir / "flagged.csv", lambda tmp: np.savetxt(
            tmp, np.column_stack([flagged, X[flagged]]), delimiter=",",
            fmt=["%d"] + ["%.9g"] * X.shape[1], header="row," + ",".join(f"x{j}" for j in range(X.shape[1])),
            comments=""))
        aekit_io.save(det, run_dir / "model.safetensors")
        report.build_report(det, view, metrics, run_dir / "report.html", settings=settings, seed=args.seed,
                            title=f"aekit anomalies: {name}")
        metrics.update(total_seconds=time.perf_counter() - t_start, history=det.history_, settings=settings,
                       versions={"aekit": __version__, "numpy": np.__version__, "python": sys.version.split()[0]})
        aekit_io.atomic_write_text(run_dir / "metrics.json",
                                   json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")
    if not args.quiet:
        extra = (f"; ROC-AUC {metrics['anomaly_roc_auc']:.4f} against the labels"
                 if metrics.get("anomaly_roc_auc") is not None else "")
        print(f"aekit: AnomalyDetector on {name} in {fit_seconds:.1f}s: {len(flagged)} of {X.shape[0]} rows "
              f"flagged{extra}; wrote {_text(Path(args.out) / 'scores.csv')}, flagged.csv, report.html")
    return 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def cmd_datasets(args) -> int:
    from .data import available_datasets, data_home

    rows = []
    for info in available_datasets(args.data_dir):
        shape = "x".join(map(str, info["image_shape"])) if info["image_shape"] else "words"
        status = "yes" if info["available"] else ("download" if info["downloadable"] else "no")
        rows.append((info["name"], f"{info['n_train']}/{info['n_test']}", shape, str(info["n_classes"]),
                     status, info["location"]))
    header = ("NAME", "TRAIN/TEST", "SHAPE", "CLASSES", "LOCAL", "LOCATION")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header) - 1)]
    for r in [header] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    print(f"\ndata folder: {data_home(args.data_dir)} (set $AEKIT_DATA or --data-dir to change it)")
    print("LOCAL: yes = ready; download = fetched on first use. Also accepted by --data: .npy, .npz, .csv, "
          ".tsv files and folders of images.")
    return 0


def _os_error(exc: OSError) -> str:
    """An OSError as words naming the path: 'File name too long: PATH'."""
    if exc.filename is None or not exc.strerror:
        return str(exc)
    paths = " -> ".join(_text(os.fsdecode(f)) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{exc.strerror}: {paths}"


def _one_line(message: str) -> str:
    return " ".join(str(message).split()) or "unknown error"


def main(argv=None) -> int:
    """Entry point of the ``aekit`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (status 2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.verb is None:
        parser.print_help()
        return 2
    handler = {"fit": cmd_fit, "encode": cmd_apply, "reconstruct": cmd_apply, "export": cmd_export,
               "tangents": cmd_tangents, "restore": cmd_restore, "search": cmd_search,
               "datasets": cmd_datasets, "anomalies": cmd_anomalies}[args.verb]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("aekit: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FloatingPointError) as exc:
        print(f"aekit: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path too long, under a file, unreadable, a full disk, ...
        print(f"aekit: error: {_one_line(_os_error(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
