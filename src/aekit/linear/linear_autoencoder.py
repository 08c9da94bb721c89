"""The linear autoencoder: h = W x + b, x̂ = V h + c, trained by gradient descent on squared error.

Under squared error its optimum spans the same subspace as PCA's top-k components
(Baldi & Hornik 1989), though W need not be orthogonal; ``tied=True`` sets V = Wᵀ.
It is :class:`aekit.Autoencoder` with no hidden layers, linear activations, loss 'mse' and
centred inputs (x − mean, as PCA): without centring the encoder's bias and weights are
coupled and gradient descent spends a direction of the code on the mean.
"""

from ..estimators import Autoencoder, _preset

LinearAutoencoder = _preset(
    "LinearAutoencoder",
    "A linear autoencoder, h = W x + b, x̂ = V h + c, trained on Σ(x − x̂)²; recovers PCA's subspace.\n"
    "Parameters as :class:`aekit.Autoencoder` (hidden_layer_sizes=(), activation='linear', loss='mse',\n"
    "center=True).",
    module=__name__, hidden_layer_sizes=(), activation="linear", code_activation="linear", loss="mse",
    center=True, epochs=50, learning_rate=1e-2, batch_size=64, lr_schedule="cosine")

__all__ = ["LinearAutoencoder", "Autoencoder"]
