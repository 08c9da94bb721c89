"""ONNX export: a fitted model's encoder and decoder as two ONNX graphs, served without PyTorch.

    aekit.export_onnx(est, "served/")     # → served/encoder.onnx, served/decoder.onnx
    aekit export --model runs/digits --format onnx --out served

    import onnxruntime as ort
    code = ort.InferenceSession("served/encoder.onnx").run(None, {"x": X.astype("float32")})[0]

encoder.onnx maps rows x (batch, n_features) to the code h = f(x) — for a VAE to μ(x) and, as
a second output ``logvar``, log σ²(x) — exactly :meth:`transform` (the offset of a centred
model, convolutions on flattened image rows, code activations included). decoder.onnx maps
codes z (batch, n_components) to x̂ = g(z) in data space (σ applied for cross-entropy
models), :meth:`inverse_transform`. The batch dimension is dynamic. Corruption and sampling
are training-time only and not exported.

PyTorch's exporter (``torch.onnx.export``) does the work: ``exporter='dynamo'`` (the default;
torch.export + onnxscript, PyTorch's supported path) or ``'torchscript'`` (the legacy tracer,
faster to run, deprecated by PyTorch). Needs the optional extra ``aekit[onnx]`` (onnx,
onnxscript; onnxruntime to run the files); each file is written atomically.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ._files import atomic_write
from .model import AutoencoderModel

EXPORTERS = ("dynamo", "torchscript")
OPSET = 18


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"ONNX export needs the optional package {module!r}: pip install 'aekit[onnx]' "
                          "(onnx, onnxscript, onnxruntime).") from None


class OnnxEncoder(nn.Module):
    """x (batch, n_features) → h (μ for a Gaussian code; and log σ² as a second output)."""

    def __init__(self, model: AutoencoderModel):
        super().__init__()
        self.model = model

    def forward(self, x):
        code = self.model.encode(x, sample=False)
        return (code.h, code.logvar) if self.model.is_variational else code.h


class OnnxDecoder(nn.Module):
    """z (batch, n_components) → x̂ = g(z) in data space."""

    def __init__(self, model: AutoencoderModel):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decode(z)


def _model_of(obj) -> tuple[AutoencoderModel, int, int]:
    """(model, n_features, n_components) of a fitted estimator or an AutoencoderModel."""
    model = getattr(obj, "model_", obj)
    if not isinstance(model, AutoencoderModel):
        raise TypeError(f"export_onnx needs a fitted aekit neural estimator or an AutoencoderModel; got "
                        f"{type(obj).__name__}" + (" (not fitted?)" if hasattr(obj, "get_params") else "") + ".")
    n_features = getattr(obj, "n_features_in_", None)
    if n_features is None:  # a bare model: the decoder's output size tells
        with torch.no_grad():
            k = _code_size(model)
            n_features = int(model.decode(torch.zeros(1, k)).reshape(1, -1).shape[1])
    return model, int(n_features), _code_size(model)


def _code_size(model) -> int:
    linear = getattr(model.code, "linear", None) or getattr(model.code, "mu", None)
    if linear is not None and hasattr(linear, "out_features"):
        return int(linear.out_features)
    for module in model.code.modules():
        if isinstance(module, nn.Linear):
            return int(module.out_features)
    raise TypeError("cannot tell this model's code size: its code layer has no linear map.")


def _export(module: nn.Module, example: torch.Tensor, path: Path, inputs, outputs, exporter: str) -> Path:
    dynamic = {inputs[0]: {0: "batch"}, **{name: {0: "batch"} for name in outputs}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation and tracing chatter
        if exporter == "torchscript":
            buffer = io.BytesIO()
            torch.onnx.export(module, (example,), buffer, input_names=list(inputs), output_names=list(outputs),
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
            data = buffer.getvalue()
            return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        _require("onnxscript")
        program = torch.onnx.export(module, (example,), input_names=list(inputs), output_names=list(outputs),
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), opset_version=OPSET,
                                    dynamo=True, external_data=False, verbose=False)
        return atomic_write(path, lambda tmp: program.save(tmp, external_data=False))


def export_onnx(estimator_or_model, path, *, exporter: str = "dynamo") -> dict:
    """Write ``path``/encoder.onnx and ``path``/decoder.onnx (the folder is made); returns
    {'encoder': Path, 'decoder': Path}. Inputs are float32 with a dynamic batch size:
    encoder 'x' → 'code' (VAE: 'mean', 'logvar'), decoder 'code' → 'reconstruction'."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}; got {exporter!r}.")
    _require("onnx")
    model, n_features, k = _model_of(estimator_or_model)
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; export_onnx writes a folder (encoder.onnx, decoder.onnx).")
    out.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        encoder_outputs = ("mean", "logvar") if model.is_variational else ("code",)
        paths = {
            "encoder": _export(OnnxEncoder(model), torch.zeros(2, n_features, device=device), out / "encoder.onnx",
                               ("x",), encoder_outputs, exporter),
            "decoder": _export(OnnxDecoder(model), torch.zeros(2, k, device=device), out / "decoder.onnx",
                               ("code",), ("reconstruction",), exporter),
        }
    finally:
        model.train(was_training)
    return paths
