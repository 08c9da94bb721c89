"""aekit: the autoencoder family on PyTorch.

loss(x) = L(x, g(code(f(C(x))))) + Ω  -- one composable model, many named variants.
"""

__version__ = "0.1.0"

from .io import load, save  # noqa: E402
from .estimators import (  # noqa: E402
    VAE,
    Autoencoder,
    ContractiveAutoencoder,
    ConvAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
)

__all__ = [
    "Autoencoder",
    "ConvAutoencoder",
    "VAE",
    "DenoisingAutoencoder",
    "SparseAutoencoder",
    "ContractiveAutoencoder",
    "save",
    "load",
    "__version__",
]
