"""The parts of benchmarks/pythae_vae.py that its figures rest on, checked without pythae
(an optional extra that tests never import):

* its one evaluator of the test −ELBO gives aekit's own ELBO (VAE.score_samples) on an aekit
  model, row by row;
* the starting weights it copies into pythae's model are those aekit's VAE.fit starts from
  (if aekit's set-up changes, the benchmark's "same initial weights" stops being true and
  this fails).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # last: its modules shadow nothing

import pythae_vae as bench  # noqa: E402

import aekit  # noqa: E402


def test_evaluator_is_aekits_elbo():
    rng = np.random.default_rng(0)
    X = rng.random((120, 20)).astype(np.float32)
    est = aekit.VAE(n_components=3, hidden_layer_sizes=(16,), loss="bce", epochs=3, batch_size=40,
                    random_state=0, n_score_samples=4).fit(X)
    nelbo = bench.negative_elbo(*bench.aekit_maps(est.model_), X, n_draws=4, seed=0, code_size=3, chunk=50)
    assert nelbo.shape == (120,)
    np.testing.assert_allclose(-nelbo, est.score_samples(X), rtol=0, atol=1e-9)
    # other draws give another estimate: the draws are part of what is compared
    other = bench.negative_elbo(*bench.aekit_maps(est.model_), X, n_draws=4, seed=1, code_size=3)
    assert np.max(np.abs(other - nelbo)) > 1e-3


def test_initial_model_is_where_fit_starts():
    rng = np.random.default_rng(1)
    X = rng.random((200, bench.D)).astype(np.float32)
    args = argparse.Namespace(lr=1e-3, batch_size=100, epochs=1, draws=2)
    assert bench.check_initial_weights(X, args, seed=3) < 1e-9
    # a model built from another seed is not the one fit starts from
    other = bench.aekit_initial_model(X, seed=4).state_dict()
    ref = bench.aekit_initial_model(X, seed=3).state_dict()
    assert max(float((other[k] - v).abs().max()) for k, v in ref.items()) > 1e-3
    torch.testing.assert_close(ref["decoder.linears.2.bias"],
                               torch.logit(torch.from_numpy(X).mean(0).clamp(1e-4, 1 - 1e-4)))
