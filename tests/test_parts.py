"""The parts checked against theory: penalties vs brute-force autograd, KL vs Monte Carlo,
corruptions vs their definitions, losses vs their formulas."""

import math

import numpy as np
import pytest
import torch

from aekit.model import build_model
from aekit.parts.codes import GaussianCode, gaussian_kl
from aekit.parts.corruption import GaussianNoise, MaskingNoise, SaltAndPepper, make_corruption
from aekit.parts.losses import bernoulli_cross_entropy, resolve_loss, squared_error
from aekit.parts.penalties import (GramQuadratic, Shard, bit_balance, hutchinson_jacobian_frobenius_sq, kl_sparsity,
                                   mlp_jacobian_frobenius_sq)


def brute_force_jacobian_sq(model, x):
    """‖∂f/∂x‖²_F per example from the full Jacobian, one row at a time."""
    out = []
    for row in x:
        J = torch.autograd.functional.jacobian(lambda v: model.encode_point(v[None])[0], row)
        out.append(J.pow(2).sum())
    return torch.stack(out)


@pytest.mark.parametrize("d,hidden,act,code_act", [
    (12, (), "sigmoid", "sigmoid"), (12, (), "relu", "tanh"),
    (12, (20, 15), "sigmoid", "sigmoid"), (12, (20, 15), "tanh", "linear"), (12, (20, 15), "relu", "sigmoid"),
    (40, (20, 15), "sigmoid", "sigmoid"),  # d > h_1: the Gram-matrix route
    (40, (20,), "tanh", "linear"),
])
def test_contractive_penalty_equals_brute_force_jacobian(d, hidden, act, code_act):
    torch.manual_seed(0)
    model = build_model(d, n_components=7, hidden_layer_sizes=hidden, activation=act,
                        code_activation=code_act, contractive=1.0).double()
    x = torch.randn(9, d, dtype=torch.float64)
    linears, acts = model.encoder_layers()
    assert len(linears) == len(hidden) + 1  # one-layer and three-layer encoders
    exact = mlp_jacobian_frobenius_sq(x, linears, acts)
    brute = brute_force_jacobian_sq(model, x)
    rel = ((exact - brute).abs() / brute.abs()).max().item()
    assert rel < 1e-4, rel


def test_contractive_penalty_float32_is_within_1e4_of_brute_force():
    torch.manual_seed(1)
    model = build_model(30, n_components=5, hidden_layer_sizes=(25, 20), activation="sigmoid",
                        code_activation="sigmoid", contractive=1.0)
    x = torch.rand(6, 30)
    exact = mlp_jacobian_frobenius_sq(x, *model.encoder_layers())
    brute = brute_force_jacobian_sq(model.double(), x.double()).float()
    assert ((exact - brute).abs() / brute).max().item() < 1e-4


def test_one_layer_sigmoid_closed_form():
    """Rifai et al. (2011): ‖J‖²_F = Σ_j (h_j(1 − h_j))² Σ_i W_ji²."""
    torch.manual_seed(2)
    model = build_model(10, n_components=4, hidden_layer_sizes=(), code_activation="sigmoid", contractive=1.0).double()
    x = torch.randn(5, 10, dtype=torch.float64)
    W, b = model.code.linear.weight, model.code.linear.bias
    h = torch.sigmoid(x @ W.T + b)
    closed = ((h * (1 - h)) ** 2 * (W ** 2).sum(1)).sum(1)
    assert torch.allclose(mlp_jacobian_frobenius_sq(x, *model.encoder_layers()), closed, rtol=1e-12)


def test_contractive_penalty_gradient_matches_finite_differences():
    torch.manual_seed(3)
    model = build_model(6, n_components=3, hidden_layer_sizes=(5,), activation="tanh",
                        code_activation="sigmoid", contractive=1.0).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    w = model.encoder.linears[0].weight

    def penalty():
        return mlp_jacobian_frobenius_sq(x, *model.encoder_layers()).sum()

    (grad,) = torch.autograd.grad(penalty(), w)
    eps = 1e-6
    with torch.no_grad():
        w[1, 2] += eps
        up = penalty().item()
        w[1, 2] -= 2 * eps
        down = penalty().item()
        w[1, 2] += eps
    assert abs((up - down) / (2 * eps) - grad[1, 2].item()) < 1e-6 * max(1.0, abs(grad[1, 2].item()))


def test_contractive_gram_route_gradients_equal_the_brute_force_jacobians():
    """The Gram route (d > h_1) has its backward written out (GramQuadratic): every
    parameter's gradient of a per-example-weighted Σ_i c_i ‖J_i‖²_F equals autograd's
    through the brute-force Jacobian, and gradcheck passes on the function itself."""
    torch.manual_seed(8)
    model = build_model(11, n_components=4, hidden_layer_sizes=(6, 5), activation="sigmoid",
                        code_activation="tanh", contractive=1.0).double()
    x = torch.randn(5, 11, dtype=torch.float64)
    c = torch.rand(5, dtype=torch.float64) + 0.5
    params = [p for lin in model.encoder_layers()[0] for p in (lin.weight, lin.bias)]
    exact = torch.autograd.grad((c * mlp_jacobian_frobenius_sq(x, *model.encoder_layers())).sum(), params)
    xr = x.clone().requires_grad_(True)
    h = model.encode_point(xr)
    rows = [torch.autograd.grad(h[:, j].sum(), xr, create_graph=True)[0] for j in range(h.shape[1])]
    brute = torch.autograd.grad((c * sum(r.pow(2).sum(1) for r in rows)).sum(), params)
    for a, b in zip(exact, brute):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    m = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(GramQuadratic.apply, (m, w))
    assert torch.allclose(GramQuadratic.apply(m, w), torch.matmul(m, w).pow(2).sum((1, 2)))


@pytest.mark.parametrize("method,settings", [
    ("exact", dict(hidden_layer_sizes=(9, 7), activation="relu", code_activation="sigmoid", center=True)),
    ("exact", dict(hidden_layer_sizes=(), code_activation="tanh")),
    ("hutchinson", dict(hidden_layer_sizes=(9, 7), activation="tanh", code_activation="sigmoid")),
    ("hutchinson", dict(conv_channels=(3, 4), image_shape=(1, 4, 4), activation="relu")),
])
def test_contractive_penalty_reuses_the_forward_pass_with_the_same_loss_and_gradients(method, settings):
    """In training, the contractive penalty differentiates the encoding that the
    reconstruction already computed (hidden outputs for the exact route, the graph from x_in
    for Hutchinson's) instead of running the encoder again: the code layer runs once per
    step, and the loss and every gradient equal those of the penalty on its own encoding."""
    torch.manual_seed(9)
    model = build_model(16, n_components=3, contractive=0.7, contractive_method=method, **settings).double().train()
    model.init_from_data(torch.rand(20, 16, dtype=torch.float64))
    x = torch.rand(6, 16, dtype=torch.float64)
    calls = []
    hook = model.code.linear.register_forward_hook(lambda *a: calls.append(1))
    torch.manual_seed(10)
    shared = model(x).total
    hook.remove()
    assert len(calls) == 1
    params = list(model.parameters())
    g_shared = torch.autograd.grad(shared, params, allow_unused=True)
    torch.manual_seed(10)
    recon = model.terms(x, penalties="none")["recon"].mean()
    if method == "exact":
        own = mlp_jacobian_frobenius_sq(model.centred(x), *model.encoder_layers())
    else:
        own = hutchinson_jacobian_frobenius_sq(x, model.encode_point, 1)
    reference = recon + 0.7 * own.mean()
    g_ref = torch.autograd.grad(reference, params, allow_unused=True)
    assert torch.allclose(shared, reference, rtol=1e-12)
    for a, b in zip(g_shared, g_ref):
        assert (a is None) == (b is None)
        assert a is None or torch.allclose(a, b, rtol=1e-10, atol=1e-13)


def test_hutchinson_estimator_is_unbiased():
    torch.manual_seed(4)
    model = build_model(8, n_components=6, hidden_layer_sizes=(10,), activation="tanh", contractive=1.0).double()
    x = torch.randn(3, 8, dtype=torch.float64)
    exact = mlp_jacobian_frobenius_sq(x, *model.encoder_layers())
    draws = torch.stack([hutchinson_jacobian_frobenius_sq(x, model.encode_point, 1).detach() for _ in range(4000)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(draws.shape[0])
    assert ((mean - exact).abs() < 4 * se).all(), (mean, exact, se)


def test_vae_kl_matches_monte_carlo_within_standard_error():
    torch.manual_seed(5)
    mu = torch.randn(4, 3, dtype=torch.float64)
    logvar = torch.randn(4, 3, dtype=torch.float64) * 0.5
    closed = gaussian_kl(mu, logvar)
    n = 200_000
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(n, *mu.shape, dtype=torch.float64)
    log_q = (-0.5 * ((z - mu) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    samples = log_q - log_p
    mc, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    assert ((mc - closed).abs() < 3 * se).all(), (mc, closed, se)


def test_gaussian_code_reparameterisation_moments():
    torch.manual_seed(6)
    code = GaussianCode(4, 2).train()
    f = torch.randn(1, 4).expand(100_000, 4)
    out = code(f)
    mu, std = out.h[0], torch.exp(0.5 * out.logvar[0])
    assert torch.allclose(out.z.mean(0), mu, atol=4 * std.max().item() / 300)
    assert torch.allclose(out.z.std(0), std, rtol=0.02)
    code.eval()
    assert torch.equal(code(f[:3]).z, code(f[:3]).h)


def test_bit_balance_against_brute_force_value_gradient_and_shards():
    torch.manual_seed(0)
    prob = torch.rand(10, 4, dtype=torch.float64, requires_grad=True)
    value = bit_balance(prob)
    expected = sum((sum(prob[i, j].item() for i in range(10)) / 10 - 0.5) ** 2 for j in range(4))
    assert value.item() == pytest.approx(expected, rel=1e-12)
    value.backward()
    rho = prob.detach().mean(0)
    assert torch.allclose(prob.grad, (2 * (rho - 0.5) / 10).expand(10, 4))  # ∂/∂p_ij = 2(ρ̂_j − ½)/n
    assert bit_balance(torch.full((6, 3), 0.5)).item() == 0.0
    assert bit_balance(torch.tensor([[1.0, 0.0], [0.0, 0.0]])).item() == pytest.approx(0.25)

    class TwoRanks(Shard):  # rank 0 of 2, the other rank's rows given: its all-reduce without processes
        def __init__(self, other):
            super().__init__(0, 2, 10)
            self.other = other

        def global_sum(self, t):
            return t + self.other.sum(0)

    mine = prob.detach()[:5].clone().requires_grad_(True)
    share = TwoRanks(prob.detach()[5:]).share(bit_balance(mine, shard=TwoRanks(prob.detach()[5:])))
    assert 2 * share.item() == pytest.approx(value.item(), rel=1e-12)   # the two ranks' shares sum to the value
    share.backward()
    assert torch.allclose(mine.grad, prob.grad[:5])                      # and this rank's gradient is the global one


def test_kl_sparsity_formula():
    h = torch.tensor([[0.1, 0.5], [0.3, 0.7]])
    rho = 0.2
    rho_hat = h.mean(0)
    expected = sum(rho * math.log(rho / r) + (1 - rho) * math.log((1 - rho) / (1 - r)) for r in rho_hat.tolist())
    assert kl_sparsity(h, rho).item() == pytest.approx(expected, rel=1e-6)
    assert kl_sparsity(torch.full((5, 3), rho), rho).item() == pytest.approx(0.0, abs=1e-7)


def test_corruptions_follow_their_definitions():
    torch.manual_seed(7)
    x = torch.rand(400, 500) * 0.8 + 0.1
    g = GaussianNoise(0.3).train()
    assert (g(x) - x).std().item() == pytest.approx(0.3, rel=0.01)
    m = MaskingNoise(0.25).train()(x)
    assert (m == 0).float().mean().item() == pytest.approx(0.25, abs=0.005)
    assert torch.equal(m[m != 0], x[m != 0])
    s = SaltAndPepper(0.2).train()(x)
    assert (s == 1).float().mean().item() == pytest.approx(0.1, abs=0.005)
    assert (s == 0).float().mean().item() == pytest.approx(0.1, abs=0.005)
    for c in (g, MaskingNoise(0.5), SaltAndPepper(0.5)):
        assert torch.equal(c.eval()(x), x)  # identity outside training


def test_make_corruption_rejects_bad_settings():
    with pytest.raises(ValueError, match="noise must be one of"):
        make_corruption("speckle", 0.1)
    with pytest.raises(ValueError, match="probability"):
        make_corruption("masking", 1.5)


def test_losses_match_their_formulas():
    torch.manual_seed(8)
    x = torch.rand(5, 7)
    a = torch.randn(5, 7) * 3
    p = torch.sigmoid(a).double()
    manual = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(1)
    assert torch.allclose(bernoulli_cross_entropy(a, x).double(), manual, rtol=1e-5)
    assert torch.allclose(squared_error(a, x), ((a - x) ** 2).sum(1))
    assert torch.isfinite(bernoulli_cross_entropy(torch.full((1, 3), 200.0), torch.zeros(1, 3))).all()
    assert resolve_loss("auto", (0.0, 1.0)) == "bce"
    assert resolve_loss("auto", (-1.0, 1.0)) == "mse"


def test_tied_decoder_shares_encoder_weights():
    model = build_model(10, n_components=3, hidden_layer_sizes=(6,), tied=True)
    n_untied = sum(p.numel() for p in build_model(10, n_components=3, hidden_layer_sizes=(6,)).parameters())
    n_tied = sum(p.numel() for p in model.parameters())
    assert n_untied - n_tied == 10 * 6 + 6 * 3  # the decoder's weight matrices are gone
    x = torch.rand(4, 10)
    model(x).total.backward()
    assert model.encoder.linears[0].weight.grad is not None
    W1, W2 = model.encoder.linears[0].weight, model.code.linear.weight
    h = W2 @ torch.relu(W1 @ x[0] + model.encoder.linears[0].bias) + model.code.linear.bias
    b = list(model.decoder.biases)
    manual = W1.T @ torch.relu(W2.T @ h + b[0]) + b[1]
    assert torch.allclose(model.decoder(h[None])[0], manual, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8), (1, 7, 9), (1, 1, 10), (1, 64, 64)])
def test_conv_autoencoder_output_shape_matches_input(shape):
    model = build_model(int(np.prod(shape)), n_components=4, image_shape=shape, conv_channels=(4, 8, 8))
    x = torch.rand(2, int(np.prod(shape)))
    assert model.reconstruct(x).shape == x.shape


def test_contractive_penalty_with_centred_inputs_matches_brute_force():
    torch.manual_seed(9)
    model = build_model(10, n_components=4, hidden_layer_sizes=(8,), activation="sigmoid",
                        code_activation="sigmoid", contractive=1.0, center=True).double()
    x = torch.rand(5, 10, dtype=torch.float64)
    model.init_from_data(x)
    assert model.offset.abs().sum() > 0
    from aekit.parts.penalties import Context, Contractive

    code = model.encode(x)
    value = Contractive(1.0)(Context(x=x, x_in=x, code=code, model=model))
    brute = brute_force_jacobian_sq(model, x)
    assert ((value - brute).abs() / brute).max().item() < 1e-6


def test_init_from_data_starts_at_the_mean_reconstruction():
    x = torch.rand(50, 6) * 0.5 + 0.25
    for loss in ("mse", "bce"):
        model = build_model(6, n_components=2, hidden_layer_sizes=(4,), loss=loss)
        for p in model.decoder.parameters():  # weights zero: output = bias alone
            torch.nn.init.zeros_(p)
        model.init_from_data(x)
        assert torch.allclose(model.decode(torch.zeros(1, 2))[0], x.mean(0), atol=1e-5)
