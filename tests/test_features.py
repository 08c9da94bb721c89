"""Each feature of the model, tested by what it must DO, against the same network without it.

Every test here trains two models that differ in one setting only (same seed, same data,
same epochs) and checks the effect that setting exists for: a denoising model reconstructs
clean digits from noisy ones better than the same network trained on clean inputs; an L1
or KL-sparse code is sparser; weight decay shrinks the weights; a contractive penalty
shrinks the encoder's Jacobian; a larger β shrinks a VAE's KL; code noise makes sigmoid
codes binary. A feature whose term is removed from the loss makes the two models the same
and fails its test (benchmarks/mutations.py checks exactly that).

Data: scikit-learn's 8×8 digits scaled to [0, 1]; each model trains in about a second.
"""

import math

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA

from aekit.estimators import LinearAutoencoder
from aekit.model import build_model
from aekit.parts.codes import gaussian_kl
from aekit.parts.corruption import make_corruption
from aekit.parts.penalties import Context, Contractive, mlp_jacobian_frobenius_sq
from aekit.train import TrainConfig, train


@pytest.fixture(scope="module")
def digits():
    X = torch.from_numpy((load_digits().data / 16).astype(np.float32))
    return X[:1400], X[1400:]


def fit(X, *, seed=0, epochs=20, batch_size=64, variational=False, **settings):
    """A model built with ``settings`` from seed ``seed`` and trained on X; returned in eval mode."""
    torch.manual_seed(seed)
    model = build_model(X.shape[1], variational=variational, **settings)
    model.init_from_data(X)
    train(model, X, TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed))
    return model.eval()


def jacobian_sq(model, x):
    """Mean over rows of ‖∂h/∂x‖²_F, by autograd (one backward pass per code unit),
    independent of the penalty code under test."""
    x = x.clone().requires_grad_(True)
    h = model.encode_point(x)
    total = torch.zeros(x.shape[0])
    for j in range(h.shape[1]):
        (g,) = torch.autograd.grad(h[:, j].sum(), x, retain_graph=True)
        total = total + g.pow(2).sum(1)
    return total.mean().item()


# -- corruption ------------------------------------------------------------------------------
@pytest.mark.parametrize("noise,level", [("gaussian", 0.3), ("masking", 0.3), ("salt-and-pepper", 0.2)])
def test_denoising_beats_the_same_network_trained_without_corruption(digits, noise, level):
    """Both models see test inputs damaged by the same corruption; the one trained on corrupted
    inputs must reconstruct the CLEAN rows clearly better (an identity corruption makes the two
    models identical)."""
    X_tr, X_te = digits
    corrupt = make_corruption(noise, level).train()
    torch.manual_seed(99)
    noisy = corrupt(X_te)
    assert (noisy != X_te).any()
    net = dict(n_components=32, hidden_layer_sizes=(128,), loss="bce", noise_level=level, epochs=30)
    errors = {}
    for trained_with in (noise, None):
        model = fit(X_tr, noise=trained_with, **net)
        with torch.no_grad():
            errors[trained_with] = (model.reconstruct(noisy) - X_te).pow(2).sum(1).mean().item()
    assert errors[noise] < 0.85 * errors[None], errors


# -- code penalties --------------------------------------------------------------------------
NET = dict(n_components=16, hidden_layer_sizes=(64,), loss="bce")


def test_kl_sparsity_drives_mean_activations_to_rho(digits):
    X_tr, X_te = digits
    rho = 0.05
    sparse = fit(X_tr, code_activation="sigmoid", sparsity_weight=1.0, sparsity_target=rho, **NET)
    plain = fit(X_tr, code_activation="sigmoid", sparsity_weight=0.0, sparsity_target=rho, **NET)
    with torch.no_grad():
        mean_sparse = sparse.encode_point(X_te).mean(0)
        mean_plain = plain.encode_point(X_te).mean(0)
    assert abs(mean_sparse.mean().item() - rho) < 0.03, mean_sparse
    assert (mean_sparse - rho).abs().max().item() < 0.06, mean_sparse
    assert (mean_plain - rho).abs().mean().item() > 5 * (mean_sparse - rho).abs().mean().item()


def test_l1_penalty_shrinks_the_code(digits):
    X_tr, X_te = digits
    sparse, plain = fit(X_tr, l1=0.05, **NET), fit(X_tr, l1=0.0, **NET)
    with torch.no_grad():
        l1 = sparse.encode_point(X_te).abs().sum(1).mean().item()
        plain = plain.encode_point(X_te).abs().sum(1).mean().item()
    assert l1 < 0.6 * plain, (l1, plain)


def test_weight_decay_shrinks_the_weights(digits):
    X_tr, _ = digits

    def weights_sq(model):
        return sum(p.pow(2).sum() for p in model.parameters() if p.ndim >= 2).item()

    decayed, plain = weights_sq(fit(X_tr, weight_decay=1e-2, **NET)), weights_sq(fit(X_tr, weight_decay=0.0, **NET))
    assert decayed < 0.8 * plain, (decayed, plain)


def test_exact_contractive_penalty_shrinks_the_jacobian(digits):
    X_tr, X_te = digits
    cae = fit(X_tr, contractive=0.5, contractive_method="exact", code_activation="sigmoid", **NET)
    plain = fit(X_tr, contractive=0.0, code_activation="sigmoid", **NET)
    assert jacobian_sq(cae, X_te) < 0.5 * jacobian_sq(plain, X_te)


def test_hutchinson_contractive_shrinks_a_conv_encoders_jacobian(digits):
    """A convolutional encoder has no exact route: the penalty is Hutchinson's estimate."""
    X_tr, X_te = digits
    conv = dict(n_components=8, image_shape=(1, 8, 8), conv_channels=(8, 16), loss="bce", epochs=10)
    cae = fit(X_tr, contractive=0.1, **conv)
    assert [p.method for p in cae.penalties] == ["auto"] and cae.encoder_layers() is None
    plain = fit(X_tr, contractive=0.0, **conv)
    assert jacobian_sq(cae, X_te) < 0.5 * jacobian_sq(plain, X_te)


def test_hutchinson_contractive_penalty_is_unbiased():
    """The Contractive penalty with method='hutchinson': the mean of its draws equals the
    exact ‖J‖²_F within 4 standard errors, and the draws do vary (it is an estimate)."""
    torch.manual_seed(4)
    model = build_model(8, n_components=6, hidden_layer_sizes=(10,), activation="tanh", contractive=1.0).double()
    x = torch.randn(3, 8, dtype=torch.float64)
    penalty = Contractive(1.0, method="hutchinson")
    ctx = Context(x=x, x_in=x, code=model.encode(x), model=model)
    exact = mlp_jacobian_frobenius_sq(x, *model.encoder_layers()).detach()
    draws = torch.stack([penalty(ctx).detach() for _ in range(3000)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(draws.shape[0])
    assert (se > 0).all()
    assert ((mean - exact).abs() < 4 * se).all(), (mean, exact, se)


def test_larger_beta_gives_a_smaller_vae_kl(digits):
    X_tr, X_te = digits
    kls = []
    for beta in (0.0, 1.0, 4.0):
        model = fit(X_tr, variational=True, beta=beta, n_components=4, hidden_layer_sizes=(64,), loss="bce")
        with torch.no_grad():
            code = model.encode(X_te)
            kls.append(0.5 * (code.h.pow(2) + code.logvar.exp() - 1 - code.logvar).sum(1).mean().item())
            assert torch.allclose(gaussian_kl(code.h, code.logvar).mean(), torch.tensor(kls[-1]), rtol=1e-5)
    assert kls[1] < 0.5 * kls[0] and kls[2] < 0.5 * kls[1], kls


def test_code_noise_makes_sigmoid_codes_binary(digits):
    """Semantic hashing: Gaussian noise before the sigmoid pushes the codes toward 0 and 1."""
    X_tr, X_te = digits

    def distance_from_binary(model):
        with torch.no_grad():
            h = model.encode_point(X_te)
        return torch.minimum(h, 1 - h).mean().item()

    noisy = fit(X_tr, code_activation="sigmoid", code_noise=4.0, epochs=30, **NET)
    plain = fit(X_tr, code_activation="sigmoid", code_noise=0.0, epochs=30, **NET)
    assert distance_from_binary(noisy) < 0.5 * distance_from_binary(plain)


# -- network structure -----------------------------------------------------------------------
def test_tied_decoder_uses_the_encoders_current_weights_transposed():
    torch.manual_seed(0)
    model = build_model(10, n_components=3, hidden_layer_sizes=(6,), tied=True, loss="mse")
    W1, W2 = model.encoder.linears[0].weight, model.code.linear.weight
    b = list(model.decoder.biases)
    z = torch.randn(4, 3)

    def manual(z):
        return torch.relu(z @ W2 + b[0]) @ W1 + b[1]

    assert torch.allclose(model.decoder(z), manual(z), atol=1e-6)
    with torch.no_grad():  # change the encoder's weights: the decoder follows
        W1.mul_(-2.0).add_(0.3)
        W2.mul_(0.5)
    assert torch.allclose(model.decoder(z), manual(z), atol=1e-6)
    # only the decoder's biases are its own parameters
    assert [p.shape for p in model.decoder.parameters()] == [torch.Size([6]), torch.Size([10])]
    assert sum(p.numel() for p in model.parameters()) == 6 * 10 + 6 + 3 * 6 + 3 + 6 + 10


def test_tied_weight_gets_gradient_from_encoder_and_decoder():
    """The shared W's gradient is the sum of the gradients an untied twin (decoder weights =
    Wᵀ copies) gives its encoder weight and its decoder weight (transposed)."""
    torch.manual_seed(1)
    tied = build_model(10, n_components=3, hidden_layer_sizes=(6,), tied=True, loss="mse")
    untied = build_model(10, n_components=3, hidden_layer_sizes=(6,), loss="mse")
    with torch.no_grad():
        for a, b in [(untied.encoder.linears[0], tied.encoder.linears[0]), (untied.code.linear, tied.code.linear)]:
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
        dec = untied.decoder.linears
        dec[0].weight.copy_(tied.code.linear.weight.t())
        dec[1].weight.copy_(tied.encoder.linears[0].weight.t())
        dec[0].bias.copy_(tied.decoder.biases[0])
        dec[1].bias.copy_(tied.decoder.biases[1])
    x = torch.rand(5, 10)
    tied(x).total.backward()
    untied(x).total.backward()
    for enc, d in [(0, 1), (None, 0)]:
        t = tied.encoder.linears[0] if enc == 0 else tied.code.linear
        u = untied.encoder.linears[0] if enc == 0 else untied.code.linear
        from_decoder = untied.decoder.linears[d].weight.grad.t()
        assert from_decoder.abs().sum() > 0 and u.weight.grad.abs().sum() > 0
        assert torch.allclose(t.weight.grad, u.weight.grad + from_decoder, atol=1e-5)


def test_centring_feeds_the_encoder_x_minus_the_training_mean():
    torch.manual_seed(2)
    X = torch.rand(50, 10) + 3.0
    centred = build_model(10, n_components=4, hidden_layer_sizes=(8,), center=True)
    centred.init_from_data(X)
    m = X.mean(0)
    assert torch.allclose(centred.offset, m)
    plain = build_model(10, n_components=4, hidden_layer_sizes=(8,), center=False)
    plain.load_state_dict({k: v for k, v in centred.state_dict().items() if k != "offset"})
    with torch.no_grad():
        assert torch.allclose(centred.encode_point(X), plain.encode_point(X - m), atol=1e-6)
        assert not torch.allclose(centred.encode_point(X), plain.encode_point(X), atol=1e-3)


def test_centred_linear_autoencoder_finds_pca_subspace_of_offset_data():
    """Data far from the origin (digits + 5): with centring a linear AE spans PCA's top-10
    subspace; without it gradient descent spends the code on the mean."""
    X = (load_digits().data / 16).astype(np.float32) + 5.0
    basis = SkPCA(10).fit(X).components_.T
    angles = {}
    for center in (True, False):
        est = LinearAutoencoder(n_components=10, center=center, epochs=30, random_state=0).fit(X)
        V = est.model_.decoder.linears[0].weight.detach().numpy()
        angles[center] = np.degrees(subspace_angles(V, basis).max())
    assert angles[True] < 5.0 and angles[False] > 30.0, angles
