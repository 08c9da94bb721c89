"""aekit: the autoencoder family on PyTorch.

loss(x) = L(x, g(code(f(C(x))))) + Ω  -- one composable model, many named variants.
"""

__version__ = "0.1.0"

from . import tracking
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
from .data.rows import NpyRows
from .export import export_onnx
from .linear import PCA, FactorAnalysis, SparseCoding  # noqa: E402
from .supervised import AutoencoderClassifier, AutoencoderRegressor  # noqa: E402
from .apps import restore  # noqa: E402
from .apps.hashing import SemanticHasher  # noqa: E402
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
    "SemanticHasher",
    "AnomalyDetector",
    "PCA",
    "FactorAnalysis",
    "SparseCoding",
    "Dataset",
    "load_dataset",
    "available_datasets",
    "save",
    "load",
    "export_onnx",
    "NpyRows",
    "tracking",
    "restore",
    "__version__",
]
