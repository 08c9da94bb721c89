"""VAE.log_likelihood: the importance-sampled log p(x) against the closed form of a
linear-Gaussian VAE, and its relation to the ELBO."""

import numpy as np
import pytest

import aekit
from conftest import linear_gaussian_vae


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
