"""Dynamic binarisation (binarize='dynamic'): every training batch is a fresh Bernoulli draw."""

import numpy as np
import pytest
import torch

import aekit
from aekit.model import build_model


def _spied(binarize="dynamic", rows=32):
    """A small bce model, the record of what it sees (see _spy) and a batch of 0.3s."""
    torch.manual_seed(0)
    model = build_model(16, n_components=2, hidden_layer_sizes=(8,), loss="bce", binarize=binarize)
    return model, _spy(model), torch.full((rows, 16), 0.3)


def _spy(model):
    """Record what the loss compares with (targets) and what the encoder reads (inputs)."""
    seen = {"target": [], "input": []}
    recon = model.recon

    def recon_spy(z, x, *a, **k):
        seen["target"].append(x.detach().clone())
        return recon(z, x, *a, **k)

    model.recon = recon_spy
    model.encoder.register_forward_pre_hook(lambda m, args: seen["input"].append(args[0].detach().clone()))
    return seen


def test_training_batches_are_bernoulli_draws_of_the_data_input_and_target_alike():
    model, seen, x = _spied(rows=256)
    model.train()
    model(x)
    model(x)
    t1, t2 = seen["target"]
    assert set(t1.unique().tolist()) == {0.0, 1.0}                 # binary ...
    assert abs(t1.mean().item() - 0.3) < 0.03                      # ... with P(1) = x (4096 draws: se 0.007)
    assert not torch.equal(t1, t2)                                 # a new draw every step
    torch.testing.assert_close(seen["input"][0], t1)               # the encoder reads the same draw


def test_scores_and_validation_read_the_data_as_given():
    model, seen, x = _spied()
    model.eval()
    model(x)
    model.objective(x)
    assert all(torch.equal(t, x) for t in seen["target"])


def test_without_binarize_the_data_is_used_as_given():
    model, seen, x = _spied(binarize=None)
    model.train()
    model(x)
    assert torch.equal(seen["target"][0], x)


def test_binarize_needs_a_bernoulli_decoder_and_picks_it_under_auto():
    X = np.random.default_rng(0).uniform(size=(64, 16)).astype(np.float32)
    assert aekit.VAE(n_components=2, hidden_layer_sizes=(8,), binarize="dynamic", epochs=1).fit(X).loss_ == "bce"
    with pytest.raises(ValueError, match="needs loss='bce'"):
        aekit.Autoencoder(binarize="dynamic", loss="mse", epochs=1).fit(X)
    with pytest.raises(ValueError, match="needs data in"):
        aekit.Autoencoder(binarize="dynamic", epochs=1).fit(X * 2)
    with pytest.raises(ValueError, match="binarize must be one of"):
        aekit.Autoencoder(binarize="static").fit(X)
