"""pythae_vae: the same VAE trained by pythae 0.1.2's TrainingPipeline and by aekit.

The model, in both libraries: an MLP encoder 784-512-256 (ReLU) with a Gaussian code of 16
(two linear heads: μ and log σ²), the mirrored decoder 16-256-512-784 (ReLU) ending in
Bernoulli logits, one reparameterised draw of z per example and step, and the loss

    −ELBO(x) = Σ_pixels BCE(x, σ(logits)) + ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)

averaged over the batch. (pythae's VAE.loss_function with reconstruction_loss='bce' is
exactly this: F.binary_cross_entropy(..., reduction='none').sum(-1) plus the closed-form KL,
then .mean(dim=0); its decoder here returns σ(logits), aekit's loss reads the logits.)
Adam with the same learning rate, the same batch size and number of epochs, MNIST's 60,000
training images with values in [0, 1] (no binarisation), no validation split (pythae: no
eval_data, steps_saving=None, output in a temporary folder, no_cuda).

The same starting weights: aekit's VAE.fit builds its model under torch.manual_seed(seed)
and sets the decoder's output bias to logit(mean image); the benchmark builds that model
the same way (checked against a VAE fitted with a learning rate of 1e-12) and copies its
weights into pythae's encoder and decoder, so the two runs differ only in their training
loops (batch order, the draws of z, and Adam's kernel: aekit uses the fused one).

Timing. The two trainings run in two threads that take turns epoch by epoch (A1 B1 A2 B2
..., one computing while the other waits; aekit first in odd rounds, pythae first in even
ones), so both see the same machine state, which on a shared machine drifts by the minute.
aekit's epoch: its history record's 'time' (the loop's own clock, from the epoch's first
batch to after its end-of-epoch check; the data are one in-memory tensor indexed per batch).
pythae's epoch: a TrainingCallback's clock from on_epoch_begin to on_epoch_end, which holds
pythae's train_step (its DataLoader gathering and collating single rows into batches, the
forward, backward and Adam step, its tqdm bar) and the copy of the best-so-far model that
keep_best_on_train makes; its data preprocessing, sanity check and final save are outside.
Each library's whole call (fit / pipeline: set-up and saving included, the turns it waited
excluded) is timed too. The two share torch's global random generator, so each run's draws
of z are not those it would make alone (the interleaving is fixed, so runs repeat). The
float32 matmul peak is measured in the same process before and after each round (the
fractions of it use the highest sample).

Where the time goes (:func:`step_breakdown`): one training step of each library's model with
each Adam kernel (fused, aekit's; foreach, PyTorch's default and pythae's) on a fixed batch,
and one pass of pythae's DataLoader alone against aekit-style index slicing.

Final ELBO: one evaluator, :func:`negative_elbo`, scores both trained models on MNIST's
10,000 test images: −ELBO per example in nats, the reconstruction term averaged over a fixed
set of draws of ε (seeded, the same for every row), in float64. It is checked against
aekit's own VAE.score_samples on the aekit model.

    python benchmarks/pythae_vae.py [--epochs 10] [--batch-size 100] [--threads 2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import statistics
import tempfile
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _common import load_mnist, machine_info, matmul_peak, mlp_flops, write_result

D, HIDDEN, CODE = 784, (512, 256), 16


def _require_pythae():
    try:
        import pythae
    except ImportError as exc:  # an optional extra: say how to get it
        raise SystemExit("this benchmark needs pythae 0.1.2: pip install 'aekit[compare]' "
                         "(or pip install --no-deps pythae==0.1.2)") from exc
    import pythae.pipelines  # noqa: F401 - creates pythae's loggers, each set to INFO
    from importlib.metadata import version

    return getattr(pythae, "__version__", None) or version("pythae")


# -- the one evaluator ------------------------------------------------------------------------
@torch.no_grad()
def negative_elbo(encode, decode_logits, X: np.ndarray, n_draws: int = 10, seed: int = 0,
                  code_size: int = CODE, chunk: int = 2000) -> np.ndarray:
    """−ELBO(x) per row of X, in nats, float64:

        Σ_pixels BCE(x, σ(g(z_s))) averaged over s = 1..n_draws,  z_s = μ(x) + σ(x) ⊙ ε_s,
        plus KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²).

    ``encode(x) -> (μ, log σ²)`` and ``decode_logits(z) -> logits`` are float64 maps; the
    draws ε_s (float32 normals from torch.Generator().manual_seed(seed), then float64, as
    aekit's score_samples draws them) are the same for every row."""
    eps = torch.randn(n_draws, code_size, generator=torch.Generator().manual_seed(seed)).double()
    out = []
    for i in range(0, X.shape[0], chunk):
        x = torch.from_numpy(X[i:i + chunk]).double()
        mu, logvar = encode(x)
        std = torch.exp(0.5 * logvar)
        recon = sum(F.binary_cross_entropy_with_logits(decode_logits(mu + std * e), x, reduction="none").sum(1)
                    for e in eps) / n_draws
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        out.append((recon + kl).numpy())
    return np.concatenate(out)


def aekit_maps(model):
    """(encode, decode_logits) of an aekit AutoencoderModel, on a float64 copy."""
    m = copy.deepcopy(model).double().eval()

    def encode(x):
        code = m.encode(x, sample=False)
        return code.h, code.logvar

    return encode, m.decoder


def pythae_maps(model):
    """(encode, decode_logits) of the pythae VAE built here, on a float64 copy."""
    m = copy.deepcopy(model).double().eval()

    def encode(x):
        out = m.encoder(x)
        return out.embedding, out.log_covariance

    return encode, m.decoder.logits


# -- the pythae model -------------------------------------------------------------------------
def pythae_vae(seed: int):
    """pythae's VAE with an encoder and decoder of the aekit model's layers (shapes and
    activations); the weights are copied in by :func:`copy_weights`."""
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.body = nn.Sequential(nn.Linear(D, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU())
            self.embedding = nn.Linear(HIDDEN[1], CODE)
            self.log_var = nn.Linear(HIDDEN[1], CODE)

        def forward(self, x):
            h = self.body(x.reshape(x.shape[0], -1))
            return ModelOutput(embedding=self.embedding(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.body = nn.Sequential(nn.Linear(CODE, HIDDEN[1]), nn.ReLU(), nn.Linear(HIDDEN[1], HIDDEN[0]), nn.ReLU(),
                                      nn.Linear(HIDDEN[0], D))

        def logits(self, z):
            return self.body(z)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.body(z)))

    torch.manual_seed(seed)
    config = VAEConfig(input_dim=(D,), latent_dim=CODE, reconstruction_loss="bce")
    return VAE(config, encoder=Encoder(), decoder=Decoder())


def aekit_initial_model(X: np.ndarray, seed: int):
    """The model aekit's VAE.fit starts from: built under torch.manual_seed(seed), output
    bias at logit(mean row) (aekit.estimators._NeuralEstimator._fit_setup)."""
    from aekit.model import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(D, n_components=CODE, hidden_layer_sizes=HIDDEN, activation="relu", loss="bce",
                            value_range=(float(X.min()), float(X.max())), variational=True)
    model.init_from_data(torch.from_numpy(X))
    return model


@torch.no_grad()
def copy_weights(aekit_model, pythae_model) -> None:
    """aekit's layers, in order, into pythae's encoder and decoder."""
    src = [*aekit_model.encoder.linears, aekit_model.code.mu, aekit_model.code.logvar, *aekit_model.decoder.linears]
    enc, dec = pythae_model.encoder, pythae_model.decoder
    dst = [enc.body[0], enc.body[2], enc.embedding, enc.log_var, dec.body[0], dec.body[2], dec.body[4]]
    for s, d in zip(src, dst):
        d.weight.copy_(s.weight)
        d.bias.copy_(s.bias)


@torch.no_grad()
def check_same_model(aekit_model, pythae_model, X: np.ndarray, seed: int = 0) -> dict:
    """How far apart the two libraries' models are before training, on the rows X:

    * 'evaluator': max |Δ| of the evaluator's −ELBO per row (float64): 0 up to rounding when
      the weights were copied into the right layers;
    * 'own_loss': |Δ| of each library's own batch loss (float32, its own code: aekit's
      AutoencoderModel.forward, pythae's VAE.loss_function) at the same draw ε, relative to
      the loss: the two losses are the same function."""
    a, p = aekit_maps(aekit_model), pythae_maps(pythae_model)
    gap = np.max(np.abs(negative_elbo(*a, X, n_draws=2, seed=seed) - negative_elbo(*p, X, n_draws=2, seed=seed)))
    x = torch.from_numpy(X)
    eps = torch.randn(x.shape[0], CODE, generator=torch.Generator().manual_seed(seed))
    am, pm = copy.deepcopy(aekit_model).eval(), copy.deepcopy(pythae_model).eval()
    terms = am.terms(x, eps=eps)
    a_loss = float((terms["recon"] + terms["kl"]).mean())
    out = pm.encoder(x)
    mu, log_var = out.embedding, out.log_covariance
    z = mu + torch.exp(0.5 * log_var) * eps
    p_loss = float(pm.loss_function(pm.decoder(z)["reconstruction"], x, mu, log_var, z)[0])
    return {"evaluator_max_abs_diff": float(gap), "own_loss_aekit": a_loss, "own_loss_pythae": p_loss,
            "own_loss_relative_diff": abs(a_loss - p_loss) / abs(a_loss)}


def aekit_estimator(args, seed: int, **overrides):
    import aekit

    params = dict(n_components=CODE, hidden_layer_sizes=HIDDEN, activation="relu", loss="bce",
                  learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs, validation_fraction=0.0,
                  random_state=seed, n_score_samples=args.draws)
    params.update(overrides)
    return aekit.VAE(**params)


def check_initial_weights(X: np.ndarray, args, seed: int) -> float:
    """Largest |difference| between :func:`aekit_initial_model` and the weights of a VAE that
    aekit fitted for one step with a learning rate of 1e-12 (Adam moves each weight by at
    most ~1e-12): the benchmark's copy of aekit's starting point is the real one."""
    est = aekit_estimator(args, seed, epochs=1, batch_size=X.shape[0], learning_rate=1e-12).fit(X)
    ref = aekit_initial_model(X, seed).state_dict()
    return max(float((v - ref[k]).abs().max()) for k, v in est.model_.state_dict().items())


# -- the two runs, epoch by epoch -------------------------------------------------------------
class Baton:
    """Turn-taking between the two training threads: one holds the baton and computes, the
    other waits, so that aekit's and pythae's epochs alternate (A1 B1 A2 B2 ...) and never
    overlap. ``active[who]`` adds up the seconds each side held it (its whole call, set-up
    and saving included, waits excluded)."""

    def __init__(self, first: str):
        self.cond = threading.Condition()
        self.holder, self.done, self.failed = first, set(), None
        self.active = {"aekit": 0.0, "pythae": 0.0}
        self.since = None

    def take(self, me: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.holder == me or self.failed)
            if self.failed and self.holder != me:
                raise RuntimeError(f"the other run failed: {self.failed}")
        self.since = time.perf_counter()

    def give(self, me: str, other: str) -> None:
        """Hand over to ``other`` (unless it has finished) and wait for the baton to return."""
        with self.cond:
            if other in self.done:
                return
            self.active[me] += time.perf_counter() - self.since
            self.holder = other
            self.cond.notify_all()
        self.take(me)

    def finish(self, me: str, other: str, error=None) -> None:
        with self.cond:
            if self.since is not None and self.holder == me:
                self.active[me] += time.perf_counter() - self.since
            self.done.add(me)
            if error is not None:
                self.failed = f"{me}: {type(error).__name__}: {error}"
            self.holder = other
            self.cond.notify_all()


def run_aekit(X, args, seed, baton, out):
    baton.take("aekit")
    est = aekit_estimator(args, seed)
    est.fit(X, callback=lambda record: baton.give("aekit", "pythae"))
    out["aekit"] = (est, {"epoch_seconds": [r["time"] for r in est.history_],
                          "train_loss_per_epoch": [r["loss"] for r in est.history_]})


def run_pythae(X, args, seed, init_model, baton, out):
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    class Clock(TrainingCallback):
        """Each epoch's seconds and train loss; hands the baton over after each epoch."""

        def __init__(self):
            self.begin, self.seconds, self.losses = None, [], []

        def on_epoch_begin(self, training_config, **kwargs):
            self.begin = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.begin)

        def on_log(self, training_config, logs, **kwargs):  # the trainer's last per-epoch hook
            self.losses.append(float(logs["train_epoch_loss"]))
            baton.give("pythae", "aekit")

    baton.take("pythae")
    model = pythae_vae(seed)
    copy_weights(init_model, model)
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        config = BaseTrainerConfig(output_dir=folder, learning_rate=args.lr, per_device_train_batch_size=args.batch_size,
                                   num_epochs=args.epochs, steps_saving=None, no_cuda=True, seed=seed)
        pipeline = TrainingPipeline(model=model, training_config=config)
        pipeline(train_data=X, callbacks=[clock])
        # what pythae saves as its final model: the best epoch on the training loss
        final = pipeline.trainer._best_model
        loader = pipeline.trainer.train_loader
    out["pythae"] = (final, {"epoch_seconds": clock.seconds, "train_loss_per_epoch": clock.losses}, loader)


def batching_passes(loader, X: np.ndarray, batch_size: int, seed: int) -> dict:
    """Where pythae's epoch goes: one pass of its DataLoader alone (no model), against one pass
    of batches gathered as aekit's loop gathers them (a permutation, index slices)."""
    t0 = time.perf_counter()
    for _ in loader:
        pass
    seconds = time.perf_counter() - t0
    Xt, gen = torch.from_numpy(X), torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    perm = torch.randperm(Xt.shape[0], generator=gen)
    for i in range(0, Xt.shape[0], batch_size):
        Xt[perm[i:i + batch_size]]
    return {"dataloader_pass_seconds": seconds, "index_slicing_pass_seconds": time.perf_counter() - t0}


def train_both(X, args, seed, init_model, first: str) -> dict:
    """aekit's fit and pythae's TrainingPipeline in two threads that take turns epoch by
    epoch (:class:`Baton`), ``first`` starting. Returns {lib: (trained model, record)}."""
    baton, out, errors = Baton(first), {}, []
    jobs = {"aekit": lambda: run_aekit(X, args, seed, baton, out),
            "pythae": lambda: run_pythae(X, args, seed, init_model, baton, out)}

    def runner(me, other):
        try:
            jobs[me]()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            baton.finish(me, other, exc)
        else:
            baton.finish(me, other)

    threads = [threading.Thread(target=runner, args=pair) for pair in (("aekit", "pythae"), ("pythae", "aekit"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for lib, seconds in baton.active.items():
        out[lib][1]["call_seconds_active"] = seconds
    final, record, loader = out["pythae"]
    record.update(batching_passes(loader, X, args.batch_size, seed))  # after the timed calls
    out["pythae"] = (final, record)
    return out


def step_breakdown(init_model, X: np.ndarray, batch_size: int, seed: int, steps: int = 20, repeat: int = 15) -> dict:
    """Seconds per training step (forward, backward, Adam) on one fixed batch of each model
    with each Adam kernel: the model's own loss path (aekit's AutoencoderModel.forward,
    pythae's VAE.forward with its ModelOutputs and sigmoid + binary_cross_entropy) and the
    optimiser (fused: aekit's choice; foreach: PyTorch's default, pythae's). The variants take
    turns, ``steps`` steps at a time, ``repeat`` times; the best turn of each counts. No data
    loading: what is left of an epoch's gap once the DataLoader is set aside."""
    xb = torch.from_numpy(X[:batch_size])
    variants = {}
    for lib in ("aekit", "pythae"):
        for fused in (True, False):
            if lib == "aekit":
                model = copy.deepcopy(init_model).train()
                run = model
            else:
                model = pythae_vae(seed)
                copy_weights(init_model, model)
                model.train()

                def run(x, model=model):
                    return model({"data": x})
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)

            def step(run=run, opt=opt, lib=lib):
                for _ in range(steps):
                    out = run(xb)
                    loss = out.total if lib == "aekit" else out.loss
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            variants[f"{lib}_model_{'fused' if fused else 'foreach'}_adam"] = step
    best = {k: math.inf for k in variants}
    for k, step in variants.items():  # one untimed turn each
        step()
    for _ in range(repeat):
        for k, step in variants.items():
            t0 = time.perf_counter()
            step()
            best[k] = min(best[k], (time.perf_counter() - t0) / steps)
    return {"step_seconds": best, "batch_size": batch_size,
            "per_epoch_seconds": {k: v * math.ceil(X.shape[0] / batch_size) for k, v in best.items()}}


@torch.no_grad()
def pythae_own_test_loss(model, X_test: np.ndarray, batch_size: int, seed: int) -> float:
    """pythae's own loss (VAE.forward: one draw of z) on the test rows, batch means averaged
    as its trainer's eval_step does."""
    torch.manual_seed(seed)
    model = model.eval()
    losses = [model({"data": torch.from_numpy(X_test[i:i + batch_size])}).loss.item()
              for i in range(0, X_test.shape[0], batch_size)]
    return float(np.mean(losses))


def summary(times):
    """Median, median from epoch 2 on (epoch 1 warms up), best."""
    later = times[1:] or times
    return {"median": statistics.median(times), "median_after_first": statistics.median(later), "best": min(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="rounds of (aekit, pythae) runs, order alternating")
    ap.add_argument("--draws", type=int, default=10, help="draws of z per test row in the ELBO")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="pythae_vae", help="results file name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pythae_version = _require_pythae()
    for name in list(logging.root.manager.loggerDict):  # its console lines; its progress bars stay
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)

    data = load_mnist()
    X, X_test = np.ascontiguousarray(data.X_train, dtype=np.float32), np.ascontiguousarray(data.X_test, dtype=np.float32)
    peaks = [matmul_peak()]  # sampled again after each round: on a shared machine it drifts
    sizes = [D, *HIDDEN, 2 * CODE] + [CODE, *HIDDEN[::-1], D]  # both code heads as one 256 → 32 map
    flops = mlp_flops([D, *HIDDEN, 2 * CODE], X.shape[0]) + mlp_flops([CODE, *HIDDEN[::-1], D], X.shape[0])
    init_gap = check_initial_weights(X, args, args.seed)
    init = aekit_initial_model(X, args.seed)
    twin = pythae_vae(args.seed)
    copy_weights(init, twin)
    same = check_same_model(init, twin, X_test[:1000])
    breakdown = step_breakdown(init, X, args.batch_size, args.seed)

    rounds = []
    for r in range(args.rounds):
        seed = args.seed + r
        init = aekit_initial_model(X, seed)
        first = "aekit" if r % 2 == 0 else "pythae"
        trained = train_both(X, args, seed, init, first)
        results = {}
        for lib in ("aekit", "pythae"):
            model, rec = trained[lib]
            if lib == "aekit":
                enc, dec = aekit_maps(model.model_)
                own = model.score_samples(X_test)
                rec["own_test_elbo_score_samples"] = float(np.mean(own))
            else:
                enc, dec = pythae_maps(model)
                rec["own_test_loss_one_draw"] = pythae_own_test_loss(model, X_test, args.batch_size, seed)
            nelbo = negative_elbo(enc, dec, X_test, n_draws=args.draws)
            rec["test_negative_elbo_nats"] = float(nelbo.mean())
            rec["test_negative_elbo_sem"] = float(nelbo.std(ddof=1) / math.sqrt(len(nelbo)))
            rec["epoch"] = summary(rec["epoch_seconds"])
            results[lib] = rec
            if lib == "aekit":
                # the evaluator against aekit's own ELBO (score_samples: the same draws, float64)
                results["evaluator_vs_score_samples_max_abs_diff"] = float(np.max(np.abs(-nelbo - own)))
            print(f"round {r + 1} {lib}: epoch {rec['epoch']['median_after_first']:.2f}s (median from epoch 2), "
                  f"test −ELBO {rec['test_negative_elbo_nats']:.2f} nats", flush=True)
        a, p = results["aekit"]["epoch"], results["pythae"]["epoch"]
        # epoch k of pythae ran right after (or before) epoch k of aekit: each pair shares the
        # machine's state of that minute
        results["paired_epoch_ratios_pythae_over_aekit"] = [
            tp / ta for ta, tp in zip(results["aekit"]["epoch_seconds"], results["pythae"]["epoch_seconds"])]
        results["ratio_pythae_over_aekit_epoch_median"] = p["median"] / a["median"]
        results["ratio_pythae_over_aekit_epoch_median_after_first"] = p["median_after_first"] / a["median_after_first"]
        results["ratio_pythae_over_aekit_call_active"] = (results["pythae"]["call_seconds_active"]
                                                          / results["aekit"]["call_seconds_active"])
        order = (first, "pythae" if first == "aekit" else "aekit")
        results["order"], results["seed"] = list(order), seed
        rounds.append(results)
        peaks.append(matmul_peak())
    peak = max(peaks)

    a_all = [t for r in rounds for t in r["aekit"]["epoch_seconds"][1:] or r["aekit"]["epoch_seconds"]]
    p_all = [t for r in rounds for t in r["pythae"]["epoch_seconds"][1:] or r["pythae"]["epoch_seconds"]]
    a_med, p_med = statistics.median(a_all), statistics.median(p_all)
    pairs = [q for r in rounds for q in r["paired_epoch_ratios_pythae_over_aekit"]]
    result = {
        "benchmark": "pythae_vae",
        "machine": machine_info(),
        "pythae_version": pythae_version,
        "model": {"encoder": [D, *HIDDEN], "code": CODE, "decoder": [CODE, *HIDDEN[::-1], D], "activation": "relu",
                  "decoder_likelihood": "Bernoulli (bce), data in [0, 1], not binarised", "optimizer": "Adam",
                  "learning_rate": args.lr, "batch_size": args.batch_size, "epochs": args.epochs,
                  "validation": "none", "same_initial_weights": True},
        "initial_weights_max_abs_diff_vs_aekit_fit": init_gap,
        "same_model_check_before_training": same,
        "step_breakdown": breakdown,
        "n_train": int(X.shape[0]), "n_test": int(X_test.shape[0]), "test_draws": args.draws,
        "threads": args.threads,
        "matmul_peak_gflops": peak / 1e9,
        "matmul_peak_gflops_samples": [round(x / 1e9, 2) for x in peaks],
        "epoch_matmul_gflop": flops / 1e9,
        "network_sizes": sizes,
        "rounds": rounds,
        "aekit_epoch_seconds_median": a_med,
        "pythae_epoch_seconds_median": p_med,
        "ratio_pythae_over_aekit_paired_epochs_median": statistics.median(pairs),
        "ratio_pythae_over_aekit_paired_epochs_range": [min(pairs), max(pairs)],
        "ratio_pythae_over_aekit_epoch_medians_after_first": p_med / a_med,
        "aekit_fraction_of_matmul_peak": flops / a_med / peak,
        "pythae_fraction_of_matmul_peak": flops / p_med / peak,
        "aekit_test_negative_elbo_nats": statistics.mean(r["aekit"]["test_negative_elbo_nats"] for r in rounds),
        "pythae_test_negative_elbo_nats": statistics.mean(r["pythae"]["test_negative_elbo_nats"] for r in rounds),
        "test_negative_elbo_pythae_minus_aekit_per_round": [
            r["pythae"]["test_negative_elbo_nats"] - r["aekit"]["test_negative_elbo_nats"] for r in rounds],
        "timed": {"aekit": "history_ record 'time': the epoch's batches (index an in-memory tensor, forward, "
                           "backward, fused Adam) and its end-of-epoch divergence check",
                  "pythae": "on_epoch_begin → on_epoch_end: train_step (DataLoader collating single rows, forward, "
                            "backward, Adam, tqdm bar) and keep_best_on_train's deepcopy of the model"},
    }
    write_result(args.name, result)
    print(f"epoch (median from epoch 2): aekit {a_med:.2f}s, pythae {p_med:.2f}s; pythae/aekit over paired "
          f"epochs {statistics.median(pairs):.2f} (median of {len(pairs)}); test −ELBO: aekit {result['aekit_test_negative_elbo_nats']:.2f}, "
          f"pythae {result['pythae_test_negative_elbo_nats']:.2f} nats; peak {peak / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
