"""Elementwise activations φ, with their derivatives φ'(a) written from a and h = φ(a).

The derivatives are what the exact contractive penalty needs: J_f = D_L W_L ⋯ D_1 W_1 with
D_l = diag(φ'(a_l)).
"""

from __future__ import annotations

import torch

ACTIVATIONS = {
    "relu": (torch.relu, lambda a, h: (h > 0).to(h.dtype)),   # h > 0 ⇔ a > 0
    "sigmoid": (torch.sigmoid, lambda a, h: h * (1 - h)),
    "tanh": (torch.tanh, lambda a, h: 1 - h * h),
    "linear": (lambda a: a, lambda a, h: torch.ones_like(h)),
}


def check_activation(name: str, what: str = "activation") -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"{what} must be one of {sorted(ACTIVATIONS)}; got {name!r}.")
    return name


def activate(name: str, a: torch.Tensor) -> torch.Tensor:
    """φ(a)."""
    return ACTIVATIONS[name][0](a)


def derivative(name: str, a: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """φ'(a), given a and h = φ(a); each of these four reads h alone (a may be None)."""
    return ACTIVATIONS[name][1](a, h)
