"""The training loop: repeatable, resumable, early stopping, schedules, checkpoints."""

import numpy as np
import pytest
import torch

import aekit
from aekit.model import build_model
from aekit.train import TrainConfig, load_checkpoint, resolve_device, train


def digits():
    from sklearn.datasets import load_digits

    return torch.from_numpy((load_digits().data / 16).astype(np.float32))


def make():
    torch.manual_seed(0)
    return build_model(64, n_components=8, hidden_layer_sizes=(32,), loss="bce", noise="masking", noise_level=0.2)


def test_same_seed_same_run():
    X = digits()
    runs = []
    for _ in range(2):
        model = make()
        hist = train(model, X, TrainConfig(epochs=3, seed=11))
        runs.append((hist, model.state_dict()))
    assert [h["loss"] for h in runs[0][0]] == [h["loss"] for h in runs[1][0]]
    for k in runs[0][1]:
        assert torch.equal(runs[0][1][k], runs[1][1][k])


def test_loss_decreases():
    hist = train(make(), digits(), TrainConfig(epochs=8, seed=0))
    assert hist[-1]["recon"] < 0.8 * hist[0]["recon"]


@pytest.mark.parametrize("optimizer,schedule", [("adam", "cosine"), ("sgd", "step"), ("adam", "plateau")])
def test_resume_equals_uninterrupted_run(tmp_path, optimizer, schedule):
    X = digits()
    cfg = dict(epochs=6, seed=3, optimizer=optimizer, learning_rate=0.05 if optimizer == "sgd" else 1e-3,
               lr_schedule=schedule, validation_fraction=0.1)
    full = make()
    hist_full = train(full, X, TrainConfig(**cfg))

    ckpt = tmp_path / "ckpt.safetensors"

    class Interrupted(Exception):
        pass

    def interrupt_after_3(record):
        if record["epoch"] == 3:
            raise Interrupted

    with pytest.raises(Interrupted):  # the run dies after epoch 3's checkpoint
        train(make(), X, TrainConfig(**cfg, checkpoint_path=str(ckpt)), callback=interrupt_after_3)
    resumed = make()  # fresh weights: everything must come from the checkpoint
    hist_resumed = train(resumed, X, TrainConfig(**cfg, checkpoint_path=str(ckpt)), resume=True)
    assert len(hist_resumed) == 6
    assert [h["loss"] for h in hist_resumed] == pytest.approx([h["loss"] for h in hist_full], rel=1e-6)
    for k, v in full.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k], atol=1e-6), k


def test_learning_rate_schedules():
    X = digits()
    hist = train(make(), X, TrainConfig(epochs=4, lr_schedule="step", learning_rate=0.01, seed=0))
    assert [h["lr"] for h in hist] == pytest.approx([0.01, 0.01, 0.001, 0.0001])
    hist = train(make(), X, TrainConfig(epochs=4, lr_schedule="cosine", learning_rate=0.01, seed=0))
    assert hist[0]["lr"] == pytest.approx(0.01) and hist[-1]["lr"] < hist[1]["lr"] < 0.01


def test_early_stopping_stops_at_patience_and_restores_best():
    """A wide network on 40 rows overfits: the loss on held-out rows falls, then rises. Training
    must stop exactly `patience` epochs after the best one and hand back the best weights."""
    from aekit.train import evaluate

    X = digits()
    X_tr, X_val = X[:40], X[1000:1300]
    torch.manual_seed(0)
    model = build_model(64, n_components=32, hidden_layer_sizes=(256,), loss="bce")
    hist = train(model, X_tr, TrainConfig(epochs=400, learning_rate=1e-2, batch_size=8, early_stopping=True, patience=5,
                                          tol=0.0, seed=0), X_val=X_val)
    val = [h["val_loss"] for h in hist]
    best = int(np.argmin(val))
    assert len(hist) < 400, "never stopped"
    assert len(hist) == best + 1 + 5, (len(hist), best)
    assert val[-1] > val[best]  # it did get worse before stopping
    assert evaluate(model, X_val) == pytest.approx(val[best], rel=1e-6)  # the best weights, not the last


def test_checkpoint_is_written_atomically_and_readable(tmp_path):
    ckpt = tmp_path / "run" / "ckpt.safetensors"
    model = make()
    train(model, digits(), TrainConfig(epochs=2, seed=0, checkpoint_path=str(ckpt)))
    assert ckpt.exists() and not [p for p in ckpt.parent.iterdir() if p.name.endswith(".tmp")]
    opt = torch.optim.Adam(model.parameters())
    epoch, history = load_checkpoint(ckpt, model, opt, None, torch.Generator(), None)
    assert epoch == 2 and len(history) == 2
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable aekit checkpoint"):
        load_checkpoint(ckpt, model, opt, None, torch.Generator(), None)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu-9000")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_estimator_resume_via_checkpoint_path(tmp_path):
    X = digits().numpy()
    ckpt = str(tmp_path / "ae.safetensors")
    a = aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), epochs=4, random_state=0).fit(X)
    first = aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), epochs=4, random_state=0, checkpoint_path=ckpt).fit(X)
    assert first.n_iter_ == 4
    b = aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), epochs=4, random_state=0, checkpoint_path=ckpt).fit(X, resume=True)
    assert b.n_iter_ == 4
    np.testing.assert_allclose(a.transform(X), b.transform(X), atol=1e-5)
