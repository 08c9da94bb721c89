"""What the named variants must achieve on real data (MNIST from $AEKIT_DATA)."""

import numpy as np
import pytest

import aekit
from aekit.data import load_dataset
from conftest import requires_mnist

pytestmark = [requires_mnist, pytest.mark.slow]


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def psnr(a, b):
    """Peak signal-to-noise ratio in dB for data in [0, 1]: 10 log10(1 / MSE)."""
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def test_denoising_autoencoder_gains_6db_over_noisy_input(mnist):
    X_test = mnist.X_test[:2000]
    noisy = X_test + 0.5 * np.random.default_rng(0).standard_normal(X_test.shape).astype(np.float32)
    dae = aekit.DenoisingAutoencoder(n_components=64, hidden_layer_sizes=(256,), noise="gaussian",
                                     noise_level=0.5, epochs=3, batch_size=64, random_state=0)
    dae.fit(mnist.X_train[:10000])
    before, after = psnr(noisy, X_test), psnr(dae.reconstruct(noisy), X_test)
    assert before == pytest.approx(6.02, abs=0.05)  # σ = 0.5: MSE 0.25
    assert after - before > 6.0, (before, after)


def test_cross_entropy_autoencoder_beats_pca30(mnist):
    """Sum of squared errors over 784 pixels, mean over test images: PCA-30 gives 13.87."""
    X_train, X_test = mnist.X_train, mnist.X_test
    pca = aekit.PCA(n_components=30).fit(X_train)
    pca_error = ((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).sum(1).mean()
    ae = aekit.Autoencoder(n_components=30, hidden_layer_sizes=(256,), loss="bce", epochs=4,
                           batch_size=64, random_state=0).fit(X_train[:15000])
    ae_error = ((ae.reconstruct(X_test) - X_test) ** 2).sum(1).mean()
    assert ae.loss_ == "bce"
    assert ae_error < pca_error, (ae_error, pca_error)
