"""Manifold tangents (aekit.apps.tangents): each against a brute-force reference.

* encoder tangents = the SVD of the Jacobian built row by row with
  torch.autograd.functional.jacobian, for MLP (several activations), convolutional and VAE
  encoders, in both Jacobian methods;
* local PCA tangents = an eigendecomposition of the covariance of neighbours found by sorting
  all distances;
* the synthetic manifold's analytic tangents = central finite differences of its renderer;
* reconstruction tangents = the left singular vectors of the brute-force Jacobian of
  g(f(x)), for the same encoders;
* on that manifold, with scarce training data, the contractive autoencoder's tangents (its
  encoder's and its reconstruction's) against local PCA's and against the same network
  without the contractive penalty.
"""

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles

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


def _brute_rec_svd(est, rows):
    """Per row: J_r = ∂g(f(x))/∂x by torch.autograd.functional.jacobian (float64), then its left
    singular vectors (as rows) and singular values."""
    net = est._scoring_model()
    U, S = [], []
    for r in rows:
        x = torch.from_numpy(np.asarray(r, dtype=np.float64))
        J = torch.autograd.functional.jacobian(lambda v: net.reconstruct(v[None])[0].reshape(-1), x).numpy()
        u, s, _ = np.linalg.svd(J)
        U.append(u.T)
        S.append(s)
    return np.array(U), np.array(S)


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


@pytest.mark.parametrize("make", [
    lambda: Autoencoder(n_components=5, hidden_layer_sizes=(20,), activation="tanh", epochs=2, random_state=0),
    lambda: ContractiveAutoencoder(n_components=5, hidden_layer_sizes=(), epochs=2, random_state=0),
    lambda: ConvAutoencoder(n_components=5, conv_channels=(4,), epochs=2, random_state=0),
    lambda: VAE(n_components=4, hidden_layer_sizes=(16,), epochs=2, random_state=0),
], ids=["mlp-tanh", "cae-one-layer", "conv", "vae"])
def test_reconstruction_tangents_are_the_left_svd_of_the_bruteforce_jacobian(make, images):
    est = make()
    est.fit(images if isinstance(est, ConvAutoencoder) else images.reshape(60, -1))
    x, k = images[:5], 3
    T, s = tangents(est, x, k, of="reconstruction")
    assert T.shape == (5, k, 8, 8) and s.shape == (5, k)
    U, S = _brute_rec_svd(est, x.reshape(5, -1))
    np.testing.assert_allclose(s, S[:, :k], rtol=1e-8, atol=1e-12)
    assert np.min(np.diff(-S[:, :k + 1], axis=1)) > 1e-6 * S[:, 0].min()
    assert _same_up_to_sign(T.reshape(5, k, -1), U[:, :k])
    # not the encoder's tangents: those are another subspace
    T_enc, _ = tangents(est, x, k)
    assert not _same_up_to_sign(T.reshape(5, k, -1), T_enc.reshape(5, k, -1))


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
    with pytest.raises(ValueError, match="of must be one of 'encoder', 'reconstruction'"):
        tangents(est, images[:2], 2, of="decoder")
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


# -- the course material's comparison, on the synthetic manifold --------------------------------
def _mean_angle(A, B):
    """Mean over points of the mean principal angle (degrees) between span(A[i]) and span(B[i])."""
    return float(np.mean([np.degrees(subspace_angles(a.reshape(len(a), -1).T, b.reshape(len(b), -1).T)).mean()
                          for a, b in zip(A, B)]))


@pytest.fixture(scope="module")
def scarce():
    """100 training images of the manifold, 40 fresh test points with their true tangents, and
    the same one-layer sigmoid network trained with and without the contractive penalty: 16
    code units read through the encoder's Jacobian, 256 units read through the
    reconstruction's."""
    X, _ = make_shape_manifold(100, random_state=0)
    Xt, _, Tt = make_shape_manifold(40, random_state=1, return_tangents=True)
    kw = {"n_components": 16, "hidden_layer_sizes": (), "code_activation": "sigmoid", "loss": "bce", "epochs": 200,
              "batch_size": 32, "learning_rate": 1e-2, "validation_fraction": 0.0, "random_state": 0}
    angles = {}
    for name, lam in (("cae", 1.0), ("ae", 0.0)):
        est = Autoencoder(contractive=lam, **kw).fit(X.reshape(100, -1))
        angles[name] = _mean_angle(tangents(est, Xt, 3)[0], Tt)
    wide = {**kw, "n_components": 256, "epochs": 150, "learning_rate": 3e-3}
    for name, lam in (("cae_rec", 0.3), ("ae_rec", 0.0)):
        est = Autoencoder(contractive=lam, **wide).fit(X.reshape(100, -1))
        angles[name] = _mean_angle(tangents(est, Xt, 3, of="reconstruction")[0], Tt)
    angles["local_pca"] = _mean_angle(local_pca_tangents(X, Xt, 3, 10)[0], Tt)
    return X, Xt, Tt, angles


def test_contractive_penalty_turns_the_jacobian_toward_the_manifold(scarce):
    """With 100 training images the CAE's top-3 Jacobian directions are closer to the true
    tangents than those of the same network trained without the penalty (measured ≈ 70° vs
    ≈ 83°; unrelated 3-D subspaces of ℝ⁷⁸⁴ are ≈ 88° apart)."""
    *_, angles = scarce
    assert angles["cae"] < angles["ae"] - 6.0, angles


def test_local_pca_tangents_converge_with_more_data(scarce):
    """Local PCA with 10 neighbours among 3000 images is much closer to the truth than among 100."""
    _, Xt, Tt, angles = scarce
    X_many, _ = make_shape_manifold(3000, random_state=2)
    many = _mean_angle(local_pca_tangents(X_many, Xt, 3, 10)[0], Tt)
    assert many < angles["local_pca"] - 10.0 and many < 25.0, (many, angles)


def test_cae_reconstruction_tangents_beat_local_pca_when_data_are_scarce(scarce):
    """The course material's claim, with the CAE's tangents read off its reconstruction map
    g(f(x)): with 100 training images they are closer to the true tangents than local PCA's
    (10 neighbours), and closer than the same network's without the contractive penalty
    (measured over 3 training seeds: CAE 27.7-28.8°, plain AE 35.6-36.5°, local PCA 40.6°)."""
    *_, angles = scarce
    assert angles["cae_rec"] < angles["local_pca"] - 6.0, angles
    assert angles["cae_rec"] < angles["ae_rec"] - 4.0, angles


@pytest.mark.xfail(strict=True, reason="not reproduced: on this manifold with 100 training images local PCA "
                   "(≈ 40°) is closer to the true tangents than the CAE's encoder tangents (≈ 70°); see "
                   "BENCHMARKS.md 'tangents'")
def test_cae_tangents_beat_local_pca_when_data_are_scarce(scarce):
    """The course material's claim read literally (Rifai et al. 2011): with scarce data the
    tangents of the CAE's *encoder* Jacobian are closer to the manifold's than local PCA's.
    Measured here, it does not hold (strict xfail: when a change makes it hold, this test
    reports XPASS as a failure, to be updated); the reconstruction's tangents do (above)."""
    *_, angles = scarce
    assert angles["cae"] < angles["local_pca"], angles


# -- CLI and report --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cae_run(tmp_path_factory):
    from aekit import cli

    out = tmp_path_factory.mktemp("cae")
    assert cli.main(["fit", "--data", "digits", "--model", "cae", "--epochs", "3", "--code", "8", "--hidden", "32",
                     "--out", str(out), "--quiet"]) == 0
    return out


def test_contractive_report_shows_tangents_next_to_local_pca(cae_run):
    html = (cae_run / "report.html").read_text()
    assert "Tangents of the data manifold" in html and "local PCA" in html and "∂g(f(x))/∂x" in html
    # the estimator names the section only when it has a contractive penalty
    assert "tangents" in ContractiveAutoencoder().report_sections
    assert "tangents" not in Autoencoder().report_sections
    assert "tangents" in ConvAutoencoder(contractive=0.1).report_sections


def test_cli_tangents_writes_npy_and_png(cae_run, tmp_path, capsys):
    from aekit import cli, load
    from aekit.data import load_dataset

    ds = load_dataset("digits", test_fraction=0.2, random_state=0)
    np.save(tmp_path / "x.npy", ds.X_test[:4])
    np.save(tmp_path / "train.npy", ds.X_train)
    out = tmp_path / "t"
    assert cli.main(["tangents", "--model", str(cae_run), "--input", str(tmp_path / "x.npy"), "--k", "2",
                     "--out", str(out), "--local-pca", str(tmp_path / "train.npy"), "--neighbors", "12"]) == 0
    T = np.load(out / "tangents.npy")
    assert T.shape == (4, 2, 1, 8, 8)               # the run's image shape, from its metrics.json
    T_ref, s_ref = tangents(load(cae_run), ds.X_test[:4], 2)
    np.testing.assert_allclose(T.reshape(4, 2, -1), T_ref, atol=1e-6)
    np.testing.assert_allclose(np.load(out / "singular_values.npy"), s_ref, rtol=1e-6)
    L_ref, _ = local_pca_tangents(ds.X_train, ds.X_test[:4], 2, 12)
    np.testing.assert_allclose(np.load(out / "local_pca_tangents.npy").reshape(4, 2, -1), L_ref, atol=1e-6)
    assert (out / "tangents.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tangents.png" in capsys.readouterr().out
    # --of reconstruction: the reconstruction's tangents
    assert cli.main(["tangents", "--model", str(cae_run), "--input", str(tmp_path / "x.npy"), "--k", "2",
                     "--of", "reconstruction", "--out", str(tmp_path / "r")]) == 0
    R_ref, r_ref = tangents(load(cae_run), ds.X_test[:4], 2, of="reconstruction")
    np.testing.assert_allclose(np.load(tmp_path / "r" / "tangents.npy").reshape(4, 2, -1), R_ref, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "r" / "singular_values.npy"), r_ref, rtol=1e-6)
    assert not np.allclose(np.abs(R_ref), np.abs(T_ref), atol=1e-3)
    # bad input: one line, status 2
    status = cli.main(["tangents", "--model", str(cae_run), "--input", str(tmp_path / "x.npy"), "--k", "50",
                       "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("aekit: error: k=50 exceeds") and err.count("\n") == 1
