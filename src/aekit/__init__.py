"""aekit: the autoencoder family on PyTorch.

loss(x) = L(x, g(code(f(C(x))))) + Ω  -- one composable model, many named variants.
"""

__version__ = "0.1.0"

from .io import load, save  # noqa: E402
from .data import Dataset, available_datasets, load_dataset  # noqa: E402
from .estimators import (  # noqa: E402
    VAE,
    Autoencoder,
    ContractiveAutoencoder,
    ConvAutoencoder,
    DenoisingAutoencoder,
    LinearAutoencoder,
    SparseAutoencoder,
)
from .linear import PCA, FactorAnalysis, SparseCoding  # noqa: E402
from .supervised import AutoencoderClassifier, AutoencoderRegressor  # noqa: E402
from .apps.anomaly import AnomalyDetector  # noqa: E402

__all__ = [
    "Autoencoder",
    "ConvAutoencoder",
    "VAE",
    "DenoisingAutoencoder",
    "SparseAutoencoder",
    "ContractiveAutoencoder",
    "LinearAutoencoder",
    "AutoencoderClassifier",
    "AutoencoderRegressor",
    "AnomalyDetector",
    "PCA",
    "FactorAnalysis",
    "SparseCoding",
    "Dataset",
    "load_dataset",
    "available_datasets",
    "save",
    "load",
    "__version__",
]
