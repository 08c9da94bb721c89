"""VAE.log_likelihood: the importance-sampled log p(x) against the closed form of a
linear-Gaussian VAE, and its relation to the ELBO."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import aekit


def linear_gaussian_vae(exact_posterior: bool, d=6, m=2, seed=0):
    """A VAE whose decoder is x = W z + b with p(x|z) = N(Wz + b, ½ I) (the 'mse' loss), so
    p(x) = N(b, W Wᵀ + ½ I) in closed form. W has orthogonal columns, so the true posterior
    N(2 Σ Wᵀ(x − b), Σ), Σ = (I + 2 WᵀW)⁻¹, is diagonal and the encoder can be set to it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, d)).astype(np.float32)
    vae = aekit.VAE(n_components=m, hidden_layer_sizes=(), loss="mse", epochs=3, random_state=seed).fit(X)
    Q, _ = np.linalg.qr(rng.normal(size=(d, m)))
    W = Q * np.array([1.5, 0.7])[:m]                      # orthogonal columns, WᵀW = diag
    b = rng.normal(size=d)
    Sigma = 1.0 / (1.0 + 2.0 * np.sum(W * W, 0))         # diagonal of the posterior covariance
    model = vae.model_
    with torch.no_grad():
        model.decoder.linears[0].weight.copy_(torch.from_numpy(W))
        model.decoder.linears[0].bias.copy_(torch.from_numpy(b))
        if exact_posterior:
            A = 2.0 * Sigma[:, None] * W.T                 # μ = A (x − b)
            model.code.mu.weight.copy_(torch.from_numpy(A))
            model.code.mu.bias.copy_(torch.from_numpy(-A @ b))
            model.code.logvar.weight.zero_()
            model.code.logvar.bias.copy_(torch.from_numpy(np.log(Sigma)))
    W = model.decoder.linears[0].weight.detach().double().numpy()   # as stored (float32-rounded)
    b = model.decoder.linears[0].bias.detach().double().numpy()
    exact = multivariate_normal(mean=b, cov=W @ W.T + 0.5 * np.eye(d)).logpdf(X[:50].astype(np.float64))
    return vae, X[:50], exact


def test_exact_for_any_k_when_q_is_the_true_posterior():
    vae, X, exact = linear_gaussian_vae(exact_posterior=True)
    for k in (1, 7):
        # exact up to the float32 rounding of the stored posterior parameters (float64
        # networks); the default float32 networks add their rounding, far below 1e-3 nats
        np.testing.assert_allclose(vae.log_likelihood(X, n_samples=k, precision="float64"), exact, rtol=0, atol=1e-6)
        np.testing.assert_allclose(vae.log_likelihood(X, n_samples=k), exact, rtol=0, atol=1e-3)


def test_converges_to_the_closed_form_with_an_imperfect_encoder():
    vae, X, exact = linear_gaussian_vae(exact_posterior=False)
    ll, se = vae.log_likelihood(X, n_samples=4000, return_std=True)
    assert np.all(se > 0)
    # within a few Monte-Carlo standard errors of the truth (the estimate's bias is O(1/k))
    assert np.mean(np.abs(ll - exact) / se) < 3.0, np.c_[ll, exact, se][:5]
    assert abs(np.mean(ll) - np.mean(exact)) < 0.05


def test_at_least_the_elbo_and_grows_with_k():
    vae, X, exact = linear_gaussian_vae(exact_posterior=False)
    elbo = vae.score_samples(X)
    means = [vae.log_likelihood(X, n_samples=k).mean() for k in (1, 10, 200)]
    assert means[0] < means[1] < means[2] <= exact.mean() + 0.05, (means, exact.mean())
    assert means[2] > elbo.mean()


def test_bernoulli_vae_on_digits_and_bad_arguments():
    from sklearn.datasets import load_digits

    X = (load_digits().data / 16).astype(np.float32)
    vae = aekit.VAE(n_components=4, hidden_layer_sizes=(32,), epochs=5, random_state=0).fit(X)
    ll, se = vae.log_likelihood(X[:40], n_samples=64, return_std=True)
    assert ll.shape == se.shape == (40,) and ll.dtype == np.float64
    assert np.mean(ll) > np.mean(vae.score_samples(X[:40]))
    # batching the draws does not change the estimate
    np.testing.assert_allclose(vae.log_likelihood(X[:40], n_samples=64, sample_batch=5), ll, rtol=0, atol=1e-4)
    ll64 = vae.log_likelihood(X[:40], n_samples=64, precision="float64")
    np.testing.assert_allclose(vae.log_likelihood(X[:40], n_samples=64, sample_batch=5, precision="float64"), ll64,
                               rtol=1e-10)
    np.testing.assert_allclose(ll, ll64, rtol=0, atol=1e-3)  # float32 networks: rounding only
    with pytest.raises(ValueError, match="precision"):
        vae.log_likelihood(X[:5], precision="half")
    with pytest.raises(ValueError, match="n_samples"):
        vae.log_likelihood(X[:5], n_samples=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.log_likelihood(X[:5] * 3)
