"""Classical linear models: PCA, factor analysis, sparse coding and the linear autoencoder."""

from .factor_analysis import FactorAnalysis
from .linear_autoencoder import LinearAutoencoder
from .pca import PCA
from .sparse_coding import SparseCoding, fista

__all__ = ["PCA", "FactorAnalysis", "SparseCoding", "LinearAutoencoder", "fista"]
