"""Test settings: real data sets come from a local folder, never the network."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "AEKIT_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["AEKIT_DATA"] = str(_SHARED)

# Two cores on CI: keep torch from oversubscribing them. AEKIT_TEST_THREADS overrides (1 on a
# machine shared with other jobs, where two threads of small matmuls wait on each other).
torch.set_num_threads(int(os.environ.get("AEKIT_TEST_THREADS", 0)) or max(1, min(2, os.cpu_count() or 1)))


def _have(name: str) -> bool:
    root = os.environ.get("AEKIT_DATA")
    return bool(root) and (Path(root) / name).is_dir()


requires_mnist = pytest.mark.skipif(not _have("mnist"), reason="MNIST not found under $AEKIT_DATA")
requires_olivetti = pytest.mark.skipif(not _have("olivetti-faces"), reason="Olivetti faces not found under $AEKIT_DATA")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def linear_gaussian_vae(exact_posterior: bool, d=6, m=2, seed=0, n_rows=300, n_eval=50, epochs=3,
                        importance_samples=1):
    """(vae, its first n_eval rows, their exact log p(x)) for a VAE whose decoder is x = W z + b
    with p(x|z) = N(Wz + b, ½ I) (the 'mse' loss), so p(x) = N(b, W Wᵀ + ½ I) in closed form.
    W has orthogonal columns, so the true posterior N(2 Σ Wᵀ(x − b), Σ), Σ = (I + 2 WᵀW)⁻¹,
    is diagonal and the encoder can be set to it (``exact_posterior``). Shared by the
    log_likelihood and IWAE tests."""
    import torch
    from scipy.stats import multivariate_normal

    import aekit

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, d)).astype(np.float32)
    vae = aekit.VAE(n_components=m, hidden_layer_sizes=(), loss="mse", epochs=epochs, random_state=seed,
                    importance_samples=importance_samples).fit(X)
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
    exact = multivariate_normal(mean=b, cov=W @ W.T + 0.5 * np.eye(d)).logpdf(X[:n_eval].astype(np.float64))
    return vae, X[:n_eval], exact
