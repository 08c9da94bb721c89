"""The parts of benchmarks/contractive_speed.py that its figures rest on: its plain PyTorch
contractive loops train exactly what aekit's ``contractive=λ`` trains.

* the plain objective (reconstruction + λ‖J‖²_F; the Jacobian by torch.func for a deep
  encoder, by Rifai's closed form for one layer) equals aekit's training loss on the same
  weights, and so do all the gradients;
* one plain epoch and one aekit epoch of three batches (the same permutation) move the same
  weights to the same place;
* the torch.func Jacobian norm equals a brute-force one (one backward pass per code unit).
"""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # last: its modules shadow nothing

import contractive_speed as bench  # noqa: E402
from train_speed import copy_linears  # noqa: E402


@pytest.mark.parametrize("sizes,kind", [([24, 16, 10, 5], "deep"), ([24, 9], "one_layer")])
def test_plain_objective_is_aekits_loss(sizes, kind):
    torch.manual_seed(0)
    x = torch.rand(32, sizes[0])
    model = bench.aekit_model(sizes)
    model.train()
    with torch.no_grad():  # larger weights: a Jacobian large enough to matter in the loss
        for w in model.parameters():
            w.mul_(6)
    enc, dec = bench.plain_parts(sizes)
    copy_linears(model, nn.Sequential(enc, dec))
    out = model(x)
    recon, jac = bench.plain_objective(enc, dec, x, kind)
    plain = bench.plain_loss(enc, dec, x, kind)
    assert float(bench.LAMBDA * jac.detach()) > 100 * 1e-6 * float(recon.detach())  # far above the tolerance below
    torch.testing.assert_close(jac, out.terms["contractive"], rtol=1e-5, atol=0)
    torch.testing.assert_close(plain, out.total, rtol=1e-6, atol=0)
    a = torch.autograd.grad(out.total, list(model.parameters()))
    p = torch.autograd.grad(plain, [*enc.parameters(), *dec.parameters()])
    for ga, gp in zip(a, p, strict=True):
        torch.testing.assert_close(gp, ga, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sizes,kind", [([24, 16, 10, 5], "deep"), ([24, 9], "one_layer")])
def test_one_plain_epoch_is_one_aekit_epoch(sizes, kind):
    from aekit.train import TrainConfig, train

    torch.manual_seed(0)
    X = torch.rand(120, sizes[0])  # three batches: the same rows in the same order, or the weights differ
    model = bench.aekit_model(sizes)
    with torch.no_grad():
        for w in model.parameters():
            w.mul_(6)
    enc, dec = bench.plain_parts(sizes)
    plain = nn.Sequential(enc, dec)
    copy_linears(model, plain)
    opt = torch.optim.Adam(plain.parameters(), lr=1e-3)
    bench.plain_epoch(enc, dec, opt, X, 40, torch.Generator().manual_seed(0), kind)
    train(model, X, TrainConfig(epochs=1, batch_size=40, seed=0))  # its permutation: randperm under seed 0 too
    moved = nn.Sequential(*bench.plain_parts(sizes))
    copy_linears(model, moved)
    for a, p in zip(moved.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p, a, rtol=0, atol=1e-6)


def test_vmap_jacobian_norm_is_brute_force():
    torch.manual_seed(1)
    enc, _ = bench.plain_parts([12, 8, 6, 3])
    x = torch.rand(7, 12, requires_grad=True)
    h = enc(x)
    brute = torch.zeros(7)
    for j in range(h.shape[1]):
        (g,) = torch.autograd.grad(h[:, j].sum(), x, retain_graph=True)
        brute += g.pow(2).sum(1)
    torch.testing.assert_close(bench.jacobian_sq_vmap(enc, x.detach()), brute, rtol=1e-5, atol=1e-7)
    one, _ = bench.plain_parts([12, 5])
    h = one(x)
    brute = torch.zeros(7)
    for j in range(h.shape[1]):
        (g,) = torch.autograd.grad(h[:, j].sum(), x, retain_graph=True)
        brute += g.pow(2).sum(1)
    torch.testing.assert_close(bench.jacobian_sq_closed_form(one, x, h), brute, rtol=1e-5, atol=1e-7)
