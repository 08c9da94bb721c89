"""The parts of the composed autoencoder, one concept a file: corruption, activations, nets,
codes, losses, penalties."""
