"""aekit: the autoencoder family on PyTorch.

loss(x) = L(x, g(code(f(C(x))))) + Ω  -- one composable model, many named variants.
"""

__version__ = "0.1.0"

from .io import load, save  # noqa: E402

__all__ = ["save", "load", "__version__"]
