"""The linear autoencoder: h = W x + b, x̂ = V h + c, trained by gradient descent on squared error.

Under squared error its optimum spans the same subspace as PCA's top-k components
(Baldi & Hornik 1989), though W need not be orthogonal; ``tied=True`` sets V = Wᵀ.
It is :class:`aekit.Autoencoder` with no hidden layers, linear activations and loss 'mse'.
"""

from ..estimators import Autoencoder, _preset

LinearAutoencoder = _preset(
    "LinearAutoencoder",
    "A linear autoencoder, h = W x + b, x̂ = V h + c, trained on Σ(x − x̂)²; recovers PCA's subspace.\n"
    "Parameters as :class:`aekit.Autoencoder` (hidden_layer_sizes=(), activation='linear', loss='mse').",
    module=__name__, hidden_layer_sizes=(), activation="linear", code_activation="linear", loss="mse",
    epochs=100, learning_rate=3e-3)

__all__ = ["LinearAutoencoder", "Autoencoder"]
