"""Classical linear models: PCA, factor analysis and sparse coding.

(The linear autoencoder, a preset of :class:`aekit.Autoencoder`, lives beside it in
:mod:`aekit.estimators`.)"""

from .factor_analysis import FactorAnalysis
from .pca import PCA
from .sparse_coding import SparseCoding, fista

__all__ = ["PCA", "FactorAnalysis", "SparseCoding", "fista"]
