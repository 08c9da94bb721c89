"""The GPU path, on a machine that has one (skipped elsewhere: CI has no GPU).

On a device machine: ``PYTHONPATH=src python3 -m pytest -q tests/test_cuda.py``
(``benchmarks/gpu_check.sh`` runs it with the GPU benchmark). ``AEKIT_TEST_GPU=cpu`` runs
the same checks on the CPU, to try their code where there is no GPU.

* one epoch of the loop on the GPU gives the CPU's weights (float32 matrix products on the
  GPU do not use TF32 in PyTorch's defaults; only rounding differs);
* a conv AE and a VAE train there, their state on the GPU, their losses falling;
* precision='bfloat16' runs there: its products in bfloat16, weights and Adam's moments float32;
* an estimator fitted there saves and loads: on the GPU as fitted, and with device='cpu' on
  the CPU, both copies giving the fitted one's outputs.
"""

import os

import numpy as np
import pytest
import torch

import aekit
from aekit.model import build_model
from aekit.train import TrainConfig, train

DEVICE = os.environ.get("AEKIT_TEST_GPU", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA GPU")


def _data(n=512, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g)


def test_one_epoch_on_the_gpu_gives_the_cpus_weights():
    X = _data()
    models = {}
    for device in ("cpu", DEVICE):
        torch.manual_seed(0)
        model = build_model(64, n_components=8, hidden_layer_sizes=(32,), activation="relu", loss="bce")
        # SGD: its updates are proportional to the gradients, so the GPU's rounding stays small
        # (Adam's first steps are ±lr whatever a gradient's size, and a near-zero one may flip sign)
        history = train(model, X, TrainConfig(epochs=1, batch_size=64, seed=0, device=device, optimizer="sgd",
                                              learning_rate=0.1, validation_fraction=0.0))
        assert all(p.device.type == torch.device(device).type for p in model.parameters())
        models[device] = (model, history[-1]["loss"])
    (cpu, cpu_loss), (gpu, gpu_loss) = models["cpu"], models[DEVICE]
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    torch.manual_seed(0)
    start = build_model(64, n_components=8, hidden_layer_sizes=(32,), activation="relu", loss="bce")
    start.requires_grad_(False)
    moved = max(float((a.detach() - s).abs().max()) for a, s in zip(cpu.parameters(), start.parameters()))
    assert moved > 1e-2  # the epoch moved the weights far beyond the tolerance below
    for a, b in zip(cpu.parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(b.detach().cpu(), a.detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["conv", "vae"])
def test_conv_and_vae_train_on_the_gpu(kind):
    torch.manual_seed(0)
    if kind == "conv":
        X = _data(256, 3 * 16 * 16)
        model = build_model(X.shape[1], n_components=8, conv_channels=(8, 16), image_shape=(3, 16, 16),
                            activation="relu", loss="mse")
    else:
        X = _data(512, 64)
        model = build_model(64, n_components=4, hidden_layer_sizes=(32,), activation="relu", loss="bce",
                            variational=True)
    history = train(model, X, TrainConfig(epochs=4, batch_size=64, seed=0, device=DEVICE, validation_fraction=0.0))
    assert all(p.device.type == torch.device(DEVICE).type for p in model.parameters())
    losses = [h["loss"] for h in history]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_bfloat16_on_the_gpu_keeps_float32_state(tmp_path):
    if DEVICE == "cuda" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16 arithmetic")
    from safetensors.torch import load_file

    torch.manual_seed(0)
    X = _data()
    model = build_model(64, n_components=8, hidden_layer_sizes=(32,), activation="relu", loss="bce")
    seen = []
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda mod, inp, out: seen.append((out.dtype, out.device.type)))
    checkpoint = tmp_path / "bf16.safetensors"
    history = train(model, X, TrainConfig(epochs=2, batch_size=64, seed=0, device=DEVICE, precision="bfloat16",
                                          validation_fraction=0.0, checkpoint_path=str(checkpoint)))
    assert (torch.bfloat16, torch.device(DEVICE).type) in seen  # the training products ran in bfloat16 there
    assert all(p.dtype == torch.float32 for p in model.parameters())
    moments = {k: v for k, v in load_file(checkpoint).items() if k.startswith("optim.") and v.is_floating_point()
               and v.ndim > 0}
    assert moments and all(v.dtype == torch.float32 for v in moments.values())  # Adam's m and v
    assert np.isfinite(history[-1]["loss"])


def test_an_estimator_fitted_on_the_gpu_saves_and_loads(tmp_path):
    X = _data().numpy()
    est = aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), epochs=2, batch_size=64, random_state=0,
                            device=DEVICE).fit(X)
    codes = est.transform(X)
    assert isinstance(codes, np.ndarray) and codes.shape == (512, 4)
    path = aekit.save(est, tmp_path / "gpu.safetensors")
    loaded = aekit.load(path)
    assert next(loaded.model_.parameters()).device.type == torch.device(DEVICE).type
    np.testing.assert_allclose(loaded.transform(X), codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.inverse_transform(codes), est.inverse_transform(codes), rtol=1e-5, atol=1e-6)
    on_cpu = aekit.load(path, device="cpu")
    assert next(on_cpu.model_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(on_cpu.transform(X), codes, rtol=1e-4, atol=1e-5)
