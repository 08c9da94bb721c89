"""Manifold tangents (aekit.apps.tangents): each against a brute-force reference.

* encoder tangents = the SVD of the Jacobian built row by row with
  torch.autograd.functional.jacobian, for MLP (several activations), convolutional and VAE
  encoders, in both Jacobian methods;
* local PCA tangents = an eigendecomposition of the covariance of neighbours found by sorting
  all distances;
* the synthetic manifold's analytic tangents = central finite differences of its renderer;
* on that manifold, with scarce training data, the contractive encoder's tangents against
  local PCA's and against the same network without the contractive penalty.
"""

import numpy as np
import pytest
import torch

from aekit import PCA, VAE, Autoencoder, ContractiveAutoencoder, ConvAutoencoder
from aekit.apps.tangents import (
    encoder_jacobian,
    local_pca_tangents,
    make_shape_manifold,
    render_shape,
    shape_tangents,
    tangents,
)


def _brute_svd(est, rows):
    """Per row: J by torch.autograd.functional.jacobian (float64), then numpy's SVD."""
    net = est._scoring_model()
    V, S = [], []
    for r in rows:
        x = torch.from_numpy(np.asarray(r, dtype=np.float64).reshape(1, -1))
        J = torch.autograd.functional.jacobian(lambda v: net.encode_point(v)[0], x)[:, 0, :].numpy()
        _, s, vt = np.linalg.svd(J, full_matrices=False)
        V.append(vt)
        S.append(s)
    return np.array(V), np.array(S)


def _same_up_to_sign(A, B, atol=1e-6):
    """Row vectors (last axis) equal up to a sign each."""
    dots = np.abs(np.sum(A * B, -1))
    return np.allclose(dots, 1.0, atol=atol) and np.allclose(np.abs(A), np.abs(B), atol=1e-4)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((60, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("make", [
    lambda: Autoencoder(n_components=5, hidden_layer_sizes=(20,), activation="tanh", epochs=2, random_state=0),
    lambda: Autoencoder(n_components=5, hidden_layer_sizes=(20, 12), activation="relu", code_activation="sigmoid",
                        epochs=2, random_state=0),
    lambda: ContractiveAutoencoder(n_components=5, hidden_layer_sizes=(), epochs=2, random_state=0),
    lambda: ConvAutoencoder(n_components=5, conv_channels=(4,), epochs=2, random_state=0),
    lambda: VAE(n_components=4, hidden_layer_sizes=(16,), epochs=2, random_state=0),
], ids=["mlp-tanh", "mlp-relu-sigmoid", "cae-one-layer", "conv", "vae"])
@pytest.mark.parametrize("method", ["vmap", "rows"])
def test_tangents_are_the_svd_of_the_bruteforce_jacobian(make, method, images):
    est = make()
    est.fit(images if isinstance(est, ConvAutoencoder) else images.reshape(60, -1))
    x = images[:7]
    k = 3
    T, s = tangents(est, x, k, method=method)
    assert T.shape == (7, k, 8, 8) and s.shape == (7, k)
    V, S = _brute_svd(est, x.reshape(7, -1))
    np.testing.assert_allclose(s, S[:, :k], rtol=1e-8, atol=1e-12)
    # singular vectors are defined up to sign where the singular values are distinct
    assert np.min(np.diff(-S[:, :k + 1], axis=1)) > 1e-6 * S[:, 0].min()
    assert _same_up_to_sign(T.reshape(7, k, -1), V[:, :k])
    # unit vectors, signed so the largest entry is positive
    flat = T.reshape(7, k, -1)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=-1), 1.0, atol=1e-10)
    assert np.all(np.take_along_axis(flat, np.abs(flat).argmax(-1)[..., None], -1) > 0)


def test_jacobian_methods_agree_and_match_transform(images):
    est = Autoencoder(n_components=4, hidden_layer_sizes=(10,), activation="sigmoid", epochs=1, random_state=0)
    est.fit(images.reshape(60, -1))
    net = est._scoring_model()
    X = torch.from_numpy(images[:5].reshape(5, -1)).double()
    Ja, Jb = encoder_jacobian(net, X, "vmap"), encoder_jacobian(net, X, "rows")
    torch.testing.assert_close(Ja, Jb)
    # the Jacobian is of transform's map: a small step along a row of J moves the code to first order
    eps = 1e-4
    step = Ja[:, 0, :] / Ja[:, 0, :].norm(dim=1, keepdim=True)
    h0 = est.transform(X.numpy().astype(np.float32))
    h1 = net.encode_point(X + eps * step).detach().numpy()
    h0d = net.encode_point(X).detach().numpy()
    np.testing.assert_allclose(h0d, h0, atol=1e-5)
    pred = np.einsum("nkd,nd->nk", Ja.numpy(), step.numpy()) * eps
    np.testing.assert_allclose(h1 - h0d, pred, atol=1e-7)


def test_layouts_one_point_and_errors(images):
    est = Autoencoder(n_components=4, hidden_layer_sizes=(), epochs=1, random_state=0).fit(images.reshape(60, -1))
    T_rows, _ = tangents(est, images[:3].reshape(3, -1), 2)
    assert T_rows.shape == (3, 2, 64)
    T_one, s_one = tangents(est, images[1], 2)       # one image (H, W)
    assert T_one.shape == (2, 8, 8) and s_one.shape == (2,)
    np.testing.assert_allclose(T_one.reshape(2, -1), T_rows[1], atol=1e-12)
    T_vec, _ = tangents(est, images[1].ravel(), 2)   # one row
    assert T_vec.shape == (2, 64)
    with pytest.raises(ValueError, match="k=5 exceeds"):
        tangents(est, images[:2], 5)
    with pytest.raises(ValueError, match="values per point"):
        tangents(est, np.zeros((2, 10)), 2)
    with pytest.raises(ValueError, match="k must"):
        tangents(est, images[:2], 0)
    with pytest.raises(TypeError, match="neural autoencoder"):
        tangents(PCA(n_components=3).fit(images.reshape(60, -1)), images[:2], 2)
    with pytest.raises(ValueError, match="NaN"):
        tangents(est, np.full((2, 64), np.nan), 2)


def test_local_pca_tangents_equal_bruteforce_neighbour_pca():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 12)) * np.linspace(3, 0.1, 12)
    x = rng.standard_normal((6, 12))
    k, m = 3, 15
    T, s = local_pca_tangents(X, x, k, m)
    assert T.shape == (6, k, 12) and s.shape == (6, k)
    for i in range(6):
        nearest = np.argsort(((X - x[i]) ** 2).sum(1))[:m]
        N = X[nearest]
        C = np.cov(N, rowvar=False)                   # centred on the neighbours' mean, /(m − 1)
        w, U = np.linalg.eigh(C)
        top = U[:, ::-1][:, :k].T
        np.testing.assert_allclose(s[i], np.sqrt(w[::-1][:k]), rtol=1e-8)
        assert _same_up_to_sign(T[i], top, atol=1e-8)
    # images in, images out; one point in, one set out
    T_img, _ = local_pca_tangents(X.reshape(200, 3, 4), x[0].reshape(3, 4), 2, m)
    assert T_img.shape == (2, 3, 4)
    with pytest.raises(ValueError, match="n_neighbors"):
        local_pca_tangents(X, x, 2, 500)
    with pytest.raises(ValueError, match="k=15 exceeds"):
        local_pca_tangents(X, x, 15, m)


def test_shape_manifold_tangents_match_central_differences():
    params = np.array([[0.3, -1.2, 0.4], [-2.0, 1.5, -0.7], [0.0, 0.0, 0.0]])
    T = shape_tangents(params)
    assert T.shape == (3, 3, 28, 28)
    h = 1e-5
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        fd = (render_shape(params + step) - render_shape(params - step)) / (2 * h)
        np.testing.assert_allclose(T[:, j], fd, atol=1e-7 * np.abs(fd).max(), rtol=0)
        assert np.abs(T[:, j]).max() > 0.1  # a real derivative, not zero
    X, P, T2 = make_shape_manifold(5, random_state=3, return_tangents=True)
    assert X.shape == (5, 28, 28) and X.dtype == np.float32 and 0 <= X.min() and X.max() < 1
    np.testing.assert_allclose(X, render_shape(P), atol=1e-6)
    np.testing.assert_allclose(T2, shape_tangents(P))
    # the glyph has no rotational symmetry: a quarter turn changes the image
    assert np.abs(render_shape([0, 0, np.pi / 2]) - render_shape([0, 0, 0])).max() > 0.5
