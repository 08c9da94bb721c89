"""The IWAE objective (VAE ``importance_samples=k``): the bound against brute force and the
closed form of a linear-Gaussian VAE, its relation to the ELBO, gradients, settings.

The linear-Gaussian VAE: decoder x = W z + b with p(x|z) = N(Wz + b, ½ I) (the 'mse' loss),
p(z) = N(0, I), so log p(x) = log N(x; b, W Wᵀ + ½ I) in closed form; W has orthogonal
columns, so the true posterior is diagonal and the encoder can be set to it.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.distributions import Normal

import aekit
from aekit.model import build_model
from conftest import linear_gaussian_vae as _linear_gaussian_vae


def linear_gaussian_vae(exact_posterior: bool, d=6, m=2, seed=0, importance_samples=1):
    """(vae, X rows, exact log p(x) of those rows): conftest's, at this file's sizes."""
    return _linear_gaussian_vae(exact_posterior, d=d, m=m, seed=seed, n_rows=200, n_eval=40, epochs=2,
                                importance_samples=importance_samples)


def bound(vae, X, eps):
    """L_k per row, c − iwae (the constant log_likelihood uses), for the draws eps (n, k, m)."""
    model = vae._scoring_model()
    with torch.no_grad():
        t = model.terms(torch.from_numpy(X).double(), eps=eps)
    assert set(t) == {"iwae"}
    return vae._log_likelihood_constant() - t["iwae"].numpy()


def brute_force_bound(vae, X, eps):
    """log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x) with every density written out (torch.distributions),
    one draw at a time."""
    model = vae._scoring_model()
    x = torch.from_numpy(X).double()
    code = model.encode(x, sample=False)
    std = torch.exp(0.5 * code.logvar)
    log_w = []
    for i in range(eps.shape[1]):
        z = code.h + std * eps[:, i]
        x_hat = model.decoder(z)
        log_w.append(Normal(x_hat, math.sqrt(0.5)).log_prob(x).sum(1) + Normal(0.0, 1.0).log_prob(z).sum(1)
                     - Normal(code.h, std).log_prob(z).sum(1))
    return (torch.logsumexp(torch.stack(log_w, 1), 1) - math.log(eps.shape[1])).detach().numpy()


def test_the_bound_against_brute_force_densities():
    vae, X, _ = linear_gaussian_vae(exact_posterior=False)
    eps = torch.randn(len(X), 7, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    np.testing.assert_allclose(bound(vae, X, eps), brute_force_bound(vae, X, eps), rtol=0, atol=1e-9)


def test_k1_is_one_draw_of_the_elbo():
    """L_1 = −recon(z) + c − (log q(z|x) − log p(z)) for the same draw z; its mean over draws is the
    ELBO with the closed-form KL; and importance_samples=1 leaves the ELBO's terms as they were."""
    vae, X, _ = linear_gaussian_vae(exact_posterior=False)
    model = vae._scoring_model()
    x = torch.from_numpy(X).double()
    eps = torch.randn(len(X), 1, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        elbo_terms = model.terms(x, eps=eps[:, 0])                      # the ELBO's terms, same ε
        code = model.encode(x, sample=False)
        z = code.h + torch.exp(0.5 * code.logvar) * eps[:, 0]
        std = torch.exp(0.5 * code.logvar)
        log_q_over_p = Normal(code.h, std).log_prob(z).sum(1) - Normal(0.0, 1.0).log_prob(z).sum(1)
        l1 = vae._log_likelihood_constant() - model.terms(x, eps=eps)["iwae"]
    assert set(elbo_terms) == {"recon", "kl"}
    np.testing.assert_allclose(l1, -elbo_terms["recon"] + vae._log_likelihood_constant() - log_q_over_p,
                               rtol=0, atol=1e-9)
    # averaged over many draws L_1 is the ELBO with the closed-form KL (same recon draws)
    R = 4000                                                             # draws per row
    Xr = np.repeat(X, R, axis=0)
    many = torch.randn(len(Xr), 1, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        elbo = vae._log_likelihood_constant() - model.objective(torch.from_numpy(Xr).double(), eps=many[:, 0])
    diff = bound(vae, Xr, many).reshape(len(X), R) - elbo.numpy().reshape(len(X), R)   # KL − its 1-draw estimate
    se = diff.std(1) / np.sqrt(R)
    assert np.all(np.abs(diff.mean(1)) < 4.5 * se) and np.mean(np.abs(diff.mean(1)) / se) < 1.2
    # k = 1 trains on the ELBO exactly as before: same terms, same history
    rng = np.random.default_rng(0)
    Xd = rng.random((120, 16)).astype(np.float32)
    a = aekit.VAE(n_components=2, hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(Xd)
    b = aekit.VAE(n_components=2, hidden_layer_sizes=(8,), epochs=2, random_state=0, importance_samples=1).fit(Xd)
    assert [{k: r[k] for k in ("recon", "kl", "loss")} for r in a.history_] == \
        [{k: r[k] for k in ("recon", "kl", "loss")} for r in b.history_]


def test_exact_for_any_k_when_q_is_the_true_posterior():
    vae, X, exact = linear_gaussian_vae(exact_posterior=True)
    for k in (1, 5):
        eps = torch.randn(len(X), k, 2, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
        np.testing.assert_allclose(bound(vae, X, eps), exact, rtol=0, atol=1e-5)


def test_below_log_px_and_growing_with_k():
    vae, X, exact = linear_gaussian_vae(exact_posterior=False)
    gen = torch.Generator().manual_seed(4)
    means = []
    for k in (1, 4, 32):
        reps = 2048 // k                                   # the same number of draws for every k
        eps = torch.randn(len(X), reps * k, 2, generator=gen, dtype=torch.float64)
        means.append(np.mean([bound(vae, X, e) for e in eps.split(k, dim=1)]))
    assert means[0] < means[1] < means[2] < exact.mean(), (means, exact.mean())
    assert exact.mean() - means[2] < exact.mean() - means[0]


def test_training_uses_the_bound_and_gradients_flow():
    torch.manual_seed(0)
    X = torch.from_numpy((load_digits().data[:64] / 16).astype(np.float32))
    model = build_model(64, n_components=3, hidden_layer_sizes=(16,), loss="bce", variational=True,
                        importance_samples=4, weight_decay=1e-4)
    model.train()
    out = model(X)
    assert set(out.terms) == {"iwae", "weight_decay", "loss"}      # the KL is inside the bound
    out.total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # the gradient is the brute-force bound's: the same draws through a loop over k
    eps = torch.randn(64, 4, 3, generator=torch.Generator().manual_seed(5))
    grads = []
    for how in ("model", "loop"):
        model.zero_grad()
        if how == "model":
            value = model.terms(X, eps=eps, penalties="none")["iwae"].mean()
        else:
            code = model.encode(X, sample=False)
            std = torch.exp(0.5 * code.logvar)
            log_w = []
            for i in range(4):
                z = code.h + std * eps[:, i]
                log_w.append(-model.recon(z, X) + Normal(0.0, 1.0).log_prob(z).sum(1)
                             - Normal(code.h, std).log_prob(z).sum(1))
            value = (math.log(4) - torch.logsumexp(torch.stack(log_w, 1), 1)).mean()
        value.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    # at z = μ (no draws: the divergence probe) the objective stays the ELBO's recon + KL
    model.eval()
    with torch.no_grad():
        t = model.terms(X, sample=False, penalties="objective")
    assert set(t) == {"recon", "kl"}


def test_history_validation_and_save_load(tmp_path):
    X = (load_digits().data[:300] / 16).astype(np.float32)
    vae = aekit.VAE(n_components=3, hidden_layer_sizes=(16,), epochs=2, random_state=0, importance_samples=3,
                    validation_fraction=0.2).fit(X)
    rec = vae.history_[-1]
    assert "iwae" in rec and "kl" not in rec and "recon" not in rec and rec["loss"] == rec["iwae"]
    assert np.isfinite(rec["val_loss"])
    path = aekit.save(vae, tmp_path / "iwae")
    back = aekit.load(path)
    assert back.importance_samples == 3 and back.model_.importance_samples == 3
    eps = torch.randn(10, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(bound(back, X[:10], eps), bound(vae, X[:10], eps), rtol=0, atol=0)
    np.testing.assert_allclose(back.log_likelihood(X[:10], n_samples=20), vae.log_likelihood(X[:10], n_samples=20))


def test_bad_settings():
    X = (load_digits().data[:50] / 16).astype(np.float32)
    for bad in (0, 2.5, True, "3"):
        with pytest.raises(ValueError, match="importance_samples"):
            aekit.VAE(importance_samples=bad, epochs=1).fit(X)
    with pytest.raises(ValueError, match="beta=1"):
        aekit.VAE(importance_samples=2, beta=0.5, epochs=1).fit(X)
    aekit.VAE(importance_samples=1, beta=0.5, n_components=2, hidden_layer_sizes=(8,), epochs=1).fit(X)  # fine
    with pytest.raises(ValueError, match="Gaussian code"):
        build_model(64, n_components=2, importance_samples=2)
    model = build_model(64, n_components=2, hidden_layer_sizes=(8,), variational=True, importance_samples=2)
    with pytest.raises(ValueError, match="per_feature"):
        model.train().terms(torch.rand(4, 64), per_feature=True)


def test_iwae_training_raises_the_test_likelihood():
    """The same VAE (same seed, data, epochs) trained on L_5 instead of the ELBO reaches a higher
    held-out log p(x) (Burda et al.'s finding), by many standard errors of the paired difference."""
    X = load_digits().data / 16
    X = (np.random.default_rng(0).random(X.shape) < X).astype(np.float32)    # binarised digits
    ll = [aekit.VAE(n_components=8, hidden_layer_sizes=(64,), epochs=15, batch_size=64, random_state=0,
                    importance_samples=k).fit(X[:1400]).log_likelihood(X[1400:], n_samples=200) for k in (1, 5)]
    d = ll[1] - ll[0]
    assert d.mean() > 4 * d.std(ddof=1) / np.sqrt(len(d)), (d.mean(), d.std(ddof=1) / np.sqrt(len(d)))
