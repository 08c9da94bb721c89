"""The training loop: repeatable, resumable, early stopping, schedules, checkpoints."""

import numpy as np
import pytest
import torch

import aekit
from aekit.model import build_model
from aekit.parts.penalties import Penalty
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


class Interrupted(Exception):
    pass


def interrupt_after(epoch, records):
    """A callback that keeps each epoch's record and kills the run after ``epoch``."""
    def callback(record):
        records.append(dict(record))
        if record["epoch"] == epoch:
            raise Interrupted
    return callback


def make_other():
    """The same architecture as make(), other initial weights."""
    torch.manual_seed(12345)
    return build_model(64, n_components=8, hidden_layer_sizes=(32,), loss="bce", noise="masking", noise_level=0.2)


def same_weights(a, b, atol=1e-6):
    return all(torch.allclose(v, b.state_dict()[k], atol=atol) for k, v in a.state_dict().items())


@pytest.mark.parametrize("optimizer,schedule", [("adam", "cosine"), ("sgd", "step"), ("adam", "plateau")])
def test_resume_equals_uninterrupted_run(tmp_path, optimizer, schedule):
    """A run killed after epoch 3 and resumed into a model with OTHER initial weights ends
    where the uninterrupted run ends; a fresh run from those weights (what training without
    resuming gives) does not. The history keeps the checkpoint's epochs and continues them."""
    X = digits()
    cfg = dict(epochs=6, seed=3, optimizer=optimizer, learning_rate=0.05 if optimizer == "sgd" else 1e-3,
               lr_schedule=schedule, validation_fraction=0.1)
    full = make()
    hist_full = train(full, X, TrainConfig(**cfg))

    ckpt = tmp_path / "ckpt.safetensors"
    before = []
    with pytest.raises(Interrupted):  # the run dies after epoch 3's checkpoint
        train(make(), X, TrainConfig(**cfg, checkpoint_path=str(ckpt)), callback=interrupt_after(3, before))
    resumed = make_other()  # everything must come from the checkpoint
    assert not same_weights(resumed, make())
    hist_resumed = train(resumed, X, TrainConfig(**cfg, checkpoint_path=str(ckpt)), resume=True)
    assert [h["epoch"] for h in hist_resumed] == [1, 2, 3, 4, 5, 6]
    assert hist_resumed[:3] == before  # the checkpoint's records, kept as they were
    assert [h["loss"] for h in hist_resumed] == pytest.approx([h["loss"] for h in hist_full], rel=1e-6)
    assert same_weights(full, resumed)
    fresh = make_other()  # the same call without resuming: a different model
    train(fresh, X, TrainConfig(**cfg))
    assert not same_weights(full, fresh, atol=1e-3)


def test_resume_follows_a_checkpoint_of_another_seed(tmp_path):
    """The checkpoint was written by a seed-7 run; resuming it under seed 8 must continue
    the seed-7 run (its weights, optimiser state, RNG and history), which a fresh seed-8 run
    cannot imitate."""
    X = digits()
    cfg = dict(epochs=5, learning_rate=3e-3)
    reference = make()
    hist_ref = train(reference, X, TrainConfig(**cfg, seed=7))
    ckpt = tmp_path / "seed7.safetensors"
    before = []
    with pytest.raises(Interrupted):
        train(make(), X, TrainConfig(**cfg, seed=7, checkpoint_path=str(ckpt)), callback=interrupt_after(2, before))

    resumed = make_other()
    hist = train(resumed, X, TrainConfig(**cfg, seed=8, checkpoint_path=str(ckpt)), resume=True)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4, 5]
    assert hist[:2] == before
    assert [h["loss"] for h in hist] == pytest.approx([h["loss"] for h in hist_ref], rel=1e-6)
    assert same_weights(reference, resumed)

    fresh = make_other()
    train(fresh, X, TrainConfig(**cfg, seed=8))
    assert not same_weights(reference, fresh, atol=1e-3)


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
    for other in ("meta", "mkldnn", "xpu"):  # torch devices aekit does not compute on
        with pytest.raises(ValueError, match="device must be"):
            resolve_device(other)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")  # one past the last GPU (or none at all)
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(ValueError, match="MPS"):
            resolve_device("mps")


def test_estimator_resume_via_checkpoint_path(tmp_path):
    """fit(resume=True) continues the checkpoint: 4 epochs of a random_state=0 fit, resumed
    to 6 epochs by an estimator whose own random_state is 1, give the 6-epoch
    random_state=0 fit, not a random_state=1 one."""
    X = digits().numpy()
    ckpt = str(tmp_path / "ae.safetensors")
    kw = dict(n_components=4, hidden_layer_sizes=(16,))
    full = aekit.Autoencoder(**kw, epochs=6, random_state=0).fit(X)
    first = aekit.Autoencoder(**kw, epochs=4, random_state=0, checkpoint_path=ckpt).fit(X)
    assert first.n_iter_ == 4
    b = aekit.Autoencoder(**kw, epochs=6, random_state=1, checkpoint_path=ckpt).fit(X, resume=True)
    assert b.n_iter_ == 6 and b.history_[:4] == first.history_
    np.testing.assert_allclose(full.transform(X), b.transform(X), atol=1e-5)
    other = aekit.Autoencoder(**kw, epochs=6, random_state=1).fit(X)
    assert np.abs(other.transform(X) - b.transform(X)).max() > 1e-2


class RowCheck(Penalty):
    """Reads ctx.y (the row numbers of X) and checks each batch's x rows are those rows of X;
    keeps what it saw. In the objective, so validation batches come through it too; weight 1
    (terms of weight 0 are not computed) on a term that is always 0."""

    name = "row_check"
    in_objective = True

    def __init__(self, X):
        super().__init__(1.0)
        self.X = X
        self.seen = []

    def forward(self, ctx):
        assert ctx.y is not None, "the batch's targets did not reach the penalty"
        rows = ctx.y.long()
        assert torch.equal(ctx.x, self.X[rows]), "targets and inputs are out of step"
        self.seen.append((self.training, rows.clone()))
        return torch.zeros(ctx.x.shape[0])


def test_targets_reach_penalties_aligned_with_their_rows():
    X = digits()[:300]
    y = torch.arange(300, dtype=torch.float32)  # y = row number
    torch.manual_seed(0)
    model = build_model(64, n_components=4, hidden_layer_sizes=(8,), loss="bce")
    check = RowCheck(X)
    model.penalties.append(check)
    hist = train(model, X, TrainConfig(epochs=2, batch_size=32, validation_fraction=0.2, seed=0), y=y)
    assert "row_check" in hist[-1]
    train_rows = [r for training, r in check.seen if training]
    val_rows = [r for training, r in check.seen if not training]
    assert train_rows and val_rows
    # each epoch's batches cover the 240 training rows once; validation sees the other 60
    first_epoch = torch.cat(train_rows[:8])
    assert len(first_epoch) == 240 and len(set(first_epoch.tolist())) == 240
    held_out = set(range(300)) - set(first_epoch.tolist())
    assert len(held_out) == 60 and set(torch.cat(val_rows).tolist()) >= held_out


def test_given_validation_targets_reach_validation_batches():
    X = digits()[:200]
    y = torch.arange(200, dtype=torch.float32)
    torch.manual_seed(0)
    model = build_model(64, n_components=4, hidden_layer_sizes=(8,), loss="bce")
    check = RowCheck(X)
    model.penalties.append(check)
    train(model, X[:150], TrainConfig(epochs=1, batch_size=50, seed=0), y=y[:150], X_val=X[150:], y_val=y[150:])
    assert set(torch.cat([r for t, r in check.seen if t]).tolist()) == set(range(150))
    assert set(range(150, 200)) <= set(torch.cat([r for t, r in check.seen if not t]).tolist())


def test_fused_optimiser_is_the_same_update_and_checkpoints_cross_kernels(tmp_path, monkeypatch):
    """The loop's optimiser is PyTorch's fused kernel where one exists: the same Adam update as
    the default (foreach) kernel within float rounding, and a checkpoint written with either
    kernel resumes with the other (the kernel is how, not what)."""
    import aekit.train as tr

    if "fused" not in torch.optim.Adam.__init__.__code__.co_varnames:
        pytest.skip("this PyTorch has no fused Adam")
    X = digits()
    fused = tr.make_optimizer(make().parameters(), TrainConfig())
    assert fused.param_groups[0]["fused"] is True
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    train(a, X, TrainConfig(epochs=2, seed=0))
    real = tr.make_optimizer
    monkeypatch.setattr(tr, "make_optimizer", lambda params, cfg: torch.optim.Adam(list(params), lr=cfg.learning_rate))
    ckpt = tmp_path / "foreach.safetensors"
    train(b, X, TrainConfig(epochs=2, seed=0, checkpoint_path=str(ckpt)))
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    monkeypatch.setattr(tr, "make_optimizer", real)
    train(b, X, TrainConfig(epochs=3, seed=0, checkpoint_path=str(ckpt)), resume=True)  # foreach → fused


# -- subnormal optimiser state ----------------------------------------------------------------
TINY = torch.finfo(torch.float32).tiny  # 2⁻¹²⁶, the smallest normal float32


def _subnormal_count(tensors) -> int:
    return sum(int(((t.abs() < TINY) & (t != 0)).sum()) for t in tensors if t.dtype == torch.float32)


def test_flush_subnormal_state_zeroes_only_subnormal_moments():
    from aekit.train import flush_subnormal_state

    p = torch.nn.Parameter(torch.ones(6))
    opt = torch.optim.Adam([p])
    p.grad = torch.ones(6)
    opt.step()
    values = torch.tensor([1e-39, -3e-42, 1.4e-45, 0.0, 1.2e-38, -0.5])  # 3 subnormal, 0, 2 normal
    opt.state[p]["exp_avg"].copy_(values)
    opt.state[p]["exp_avg_sq"].copy_(values.abs())
    opt.state[p]["extra64"] = values.double()  # not a moment, not float32: untouched
    before_step = opt.state[p]["step"].clone()
    flush_subnormal_state(opt)
    expected = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.2e-38, -0.5])
    assert torch.equal(opt.state[p]["exp_avg"], expected)
    assert torch.equal(opt.state[p]["exp_avg_sq"], expected.abs())
    assert torch.equal(opt.state[p]["extra64"], values.double())
    assert torch.equal(opt.state[p]["step"], before_step)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_subnormal_moments_leave_the_update_bit_identical(kind):
    """The flush's premise: an optimiser step from subnormal moments and from zeroed ones gives
    the same parameters, bit for bit (parameters of ordinary size, gradients zero or ordinary)."""
    from aekit.train import flush_subnormal_state

    gen = torch.Generator().manual_seed(0)
    init = torch.randn(4000, generator=gen) * 0.05
    grad = torch.randn(4000, generator=gen) * 1e-3
    grad[:2000] = 0.0  # 'dead' parameters: their moments only decay
    subnormal = torch.rand(4000, generator=gen) * TINY
    results = []
    for flush in (False, True):
        p = torch.nn.Parameter(init.clone())
        opt = torch.optim.Adam([p], lr=1e-2) if kind == "adam" else torch.optim.SGD([p], lr=0.1, momentum=0.9)
        p.grad = grad.clone()
        opt.step()  # creates the state
        keys = ("exp_avg", "exp_avg_sq") if kind == "adam" else ("momentum_buffer",)
        for key in keys:
            opt.state[p][key][:2000] = subnormal[:2000]
        assert _subnormal_count([opt.state[p][k] for k in keys]) > 1900
        if flush:
            flush_subnormal_state(opt)
            assert _subnormal_count([opt.state[p][k] for k in keys]) == 0
        for _ in range(3):
            p.grad = grad.clone()
            opt.step()
        results.append(p.detach().clone())
    assert torch.equal(results[0], results[1])


def test_training_leaves_no_subnormal_optimizer_state(tmp_path, monkeypatch):
    """A small ReLU autoencoder trained 2000 Adam steps: moments of parameters whose gradients
    went to zero decay into the subnormal range and stay there; the loop sets them to zero (a
    checkpoint holds none) and the model is bit for bit the one trained without doing so."""
    import aekit.train as training
    from safetensors.torch import load_file

    def fit(path):
        torch.manual_seed(0)
        X = torch.rand(4000, 16)
        model = build_model(16, n_components=4, hidden_layer_sizes=(64,), activation="relu", loss="mse")
        train(model, X, TrainConfig(epochs=2, batch_size=4, learning_rate=1e-2, validation_fraction=0.0,
                                    checkpoint_path=str(path)))
        state = load_file(str(path))
        return model.state_dict(), [v for k, v in state.items() if k.startswith("optim.")]

    weights, moments = fit(tmp_path / "flushed.safetensors")
    with monkeypatch.context() as m:
        m.setattr(training, "flush_subnormal_state", lambda optimizer: None)
        weights_raw, moments_raw = fit(tmp_path / "raw.safetensors")
    assert _subnormal_count(moments_raw) > 100  # the premise: they do occur (measured 1129)
    assert _subnormal_count(moments) == 0
    for k in weights:
        assert torch.equal(weights[k], weights_raw[k]), k


# -- mixed precision (precision='bfloat16', opt-in) -------------------------------------------
def _linear_output_dtypes(model):
    """Record the dtype of every nn.Linear output during the model's forward passes."""
    seen = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    return seen


def test_bfloat16_precision_computes_products_in_bfloat16_and_keeps_float32_state():
    """precision='bfloat16': the layers' products run in bfloat16 under autocast, while the
    weights, their gradients, the optimiser's moments and every logged term stay float32; the
    run follows the float32 run closely but is not the same computation. The default never
    enters autocast."""
    X = digits()
    exact, mixed = make(), make()
    mixed.load_state_dict(exact.state_dict())
    seen_exact, seen_mixed = _linear_output_dtypes(exact), _linear_output_dtypes(mixed)
    h32 = train(exact, X, TrainConfig(epochs=2, seed=0))
    opt_states = []
    import aekit.train as tr
    real = tr.make_optimizer

    def keep(params, cfg):
        opt = real(params, cfg)
        opt_states.append(opt)
        return opt

    tr.make_optimizer = keep
    try:
        h16 = train(mixed, X, TrainConfig(epochs=2, seed=0, precision="bfloat16"))
    finally:
        tr.make_optimizer = real
    assert set(seen_exact) == {torch.float32}
    assert torch.bfloat16 in set(seen_mixed)
    assert all(p.dtype == torch.float32 for p in mixed.parameters())
    moments = [t for s in opt_states[0].state.values() for t in s.values() if torch.is_tensor(t) and t.ndim]
    assert moments and all(t.dtype == torch.float32 for t in moments)
    for a, b in zip(h32, h16):
        assert isinstance(b["loss"], float) and b["loss"] == pytest.approx(a["loss"], rel=0.02)
        assert b["val_loss" if "val_loss" in b else "loss"] != a["val_loss" if "val_loss" in a else "loss"]
    assert not same_weights(exact, mixed, atol=1e-7)


def test_bfloat16_reconstruction_loss_is_computed_in_float32():
    """Under autocast the decoder's bfloat16 output is cast back before the loss: the recon
    term is the float32 loss of that output, not a bfloat16 computation of it."""
    torch.manual_seed(0)
    model = build_model(64, n_components=8, hidden_layer_sizes=(32,), loss="multinomial")
    x = (digits()[:256] * 16).round()  # counts: a softmax over the 64 inputs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        z = model.encode(x).z
        xhat = model.decoder(z)
    assert xhat.dtype == torch.bfloat16 and out.terms["recon"].dtype == torch.float32
    expected = model.loss(xhat.float(), x).mean().detach()
    torch.testing.assert_close(out.terms["recon"], expected, rtol=1e-6, atol=0)
    assert float(model.loss(xhat, x).mean().detach()) != float(expected)  # what the cast avoids
    # penalties computed on bfloat16 codes are logged and weighted in float32 too
    torch.manual_seed(0)
    model = build_model(64, n_components=8, hidden_layer_sizes=(32,), code_activation="sigmoid",
                        sparsity_weight=0.1, l1=0.01)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert {"kl_sparsity", "l1"} <= set(out.terms)
    assert all(v.dtype == torch.float32 for v in out.terms.values()) and out.total.dtype == torch.float32


def test_bfloat16_precision_errors_and_resume(tmp_path, monkeypatch):
    import aekit.train as tr

    with pytest.raises(ValueError, match="precision"):
        aekit.Autoencoder(precision="float16", epochs=1).fit(digits().numpy())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match="compute capability 8.0"):
        tr.autocast_for(torch.device("cuda"), "bfloat16")
    monkeypatch.undo()
    # the precision is how a run computes, not what it learns: a checkpoint resumes in either
    ckpt = tmp_path / "run.safetensors"
    model = make()
    train(model, digits(), TrainConfig(epochs=1, seed=0, checkpoint_path=str(ckpt)))
    hist = train(model, digits(), TrainConfig(epochs=2, seed=0, checkpoint_path=str(ckpt), precision="bfloat16"),
                 resume=True)
    assert [h["epoch"] for h in hist] == [1, 2]


def test_bfloat16_estimators_fit_every_family():
    """Every model family trains under precision='bfloat16' (penalties written as autograd
    Functions included) and ends near its float32 run."""
    rng = np.random.default_rng(0)
    X = rng.random((256, 64)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    y[::2] = -1
    cases = [
        (aekit.Autoencoder, dict(hidden_layer_sizes=(32,), n_components=8, contractive=0.1)),
        (aekit.Autoencoder, dict(hidden_layer_sizes=(32,), n_components=8, contractive=0.1,
                                 contractive_method="hutchinson")),
        (aekit.Autoencoder, dict(n_components=16, sparsity_weight=0.1, code_activation="sigmoid")),
        (aekit.VAE, dict(n_components=4)),
        (aekit.ConvAutoencoder, dict(conv_channels=(4, 8), n_components=8)),
        (aekit.AutoencoderClassifier, dict()),
    ]
    for cls, kw in cases:
        losses = []
        for precision in ("float32", "bfloat16"):
            est = cls(epochs=2, random_state=0, precision=precision, **kw)
            data = X.reshape(-1, 8, 8) if cls is aekit.ConvAutoencoder else X
            est.fit(data, y) if cls is aekit.AutoencoderClassifier else est.fit(data)
            assert all(p.dtype == torch.float32 for p in est.model_.parameters())
            losses.append(est.history_[-1]["loss"])
        assert np.isfinite(losses[1]) and losses[1] == pytest.approx(losses[0], rel=0.02), (cls.__name__, kw, losses)
