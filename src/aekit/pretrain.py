"""Greedy layer-wise pretraining of a deep MLP autoencoder (Hinton & Salakhutdinov 2006;
Bengio et al. 2007; stacked denoising: Vincent et al. 2010; stacked contractive: Rifai et al. 2011).

For a deep encoder x = h_0 → h_1 → … → h_L (the code), stage k trains a *shallow*
autoencoder on the codes of the stage below:

    h_k = φ_k(W_k h_{k−1} + b_k),   ĥ_{k−1} = ψ_k(V_k h_k + c_k),   loss L_k(h_{k−1}, ĥ_{k−1}) + Ω

with the deep model's own corruption C and penalties Ω applied to each stage (so a stacked
denoising / sparse / contractive autoencoder comes for free). Stage 1 uses the data's loss;
a stage whose input is a sigmoid layer's output uses cross-entropy (ψ = σ), others squared
error with ψ = the layer's activation (ReLU codes are reconstructed through a ReLU). Every
stage is an ordinary model from :func:`aekit.model.build_model`, trained by the ordinary
loop :func:`aekit.train.train`: there is no second training loop.

Unrolling copies (W_k, b_k) into the deep encoder's layer k and (V_k, c_k) into the deep
decoder's mirror layer, so that before fine-tuning the deep model computes exactly the
composition f = f_L ∘ … ∘ f_1 and g = g_1 ∘ … ∘ g_L of the stages (a test checks this).
Fine-tuning is then the estimator's normal end-to-end training.
"""

from __future__ import annotations

import dataclasses

import torch

from .model import AutoencoderModel, build_model
from .parts.corruption import IMAGE_NOISES
from .parts.nets import MLP, TiedDecoder
from .train import TrainConfig, train


def _encode_all(model: AutoencoderModel, H: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        return torch.cat([model.encode_point(H[i:i + chunk].to(device)).cpu() for i in range(0, H.shape[0], chunk)])


def stage_settings(settings: dict, k: int, n_stages: int, activations: list[str], data_loss: str) -> dict:
    """The build_model settings of stage k (0-based) of a deep model with these settings."""
    act = activations[k]
    below = activations[k - 1] if k else None
    s = dict(settings)
    s.update(hidden_layer_sizes=(), code_activation=act, activation=act,
             loss=data_loss if k == 0 else ("bce" if below == "sigmoid" else "mse"),
             center=bool(settings.get("center")) and k == 0,
             code_noise=settings.get("code_noise", 0.0) if k == n_stages - 1 else 0.0)
    if k and s.get("noise") in IMAGE_NOISES:  # image damage (blocks, watermarks, …) applies to the images only
        s["noise"] = None
    if act != "sigmoid":  # KL sparsity needs (0, 1) activations: only on sigmoid layers
        s["sparsity_weight"] = 0.0
    return s


def greedy_pretrain(model: AutoencoderModel, X: torch.Tensor, settings: dict, config: TrainConfig, *,
                    epochs: int, learning_rate: float, data_loss: str, value_range) -> dict[str, tuple]:
    """Pretrain ``model`` (built by build_model from ``settings``) greedily on the rows of X and
    unroll the stages into it. Returns {'layer 1': (shallow model, history), 'layer 2': …}."""
    layers = model.encoder_layers()
    if layers is None or not isinstance(model.decoder, (MLP, TiedDecoder)):
        raise ValueError("greedy pretraining needs an MLP encoder and decoder with a deterministic code.")
    linears, acts = layers
    n = len(linears)
    tied = isinstance(model.decoder, TiedDecoder)
    stage_cfg = dataclasses.replace(config, epochs=epochs, learning_rate=learning_rate, validation_fraction=0.0,
                                    early_stopping=False, checkpoint_path=None)
    histories = {}
    H, lo_hi = X, value_range
    for k, linear in enumerate(linears):
        s = stage_settings(settings, k, n, acts, data_loss)
        s["n_components"] = linear.out_features
        out_act = "linear" if k == 0 or acts[k - 1] == "sigmoid" else acts[k - 1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 7919 * (k + 1))
            shallow = build_model(linear.in_features, **s, value_range=lo_hi, output_activation=out_act)
        shallow.init_from_data(H)
        hist = train(shallow, H, dataclasses.replace(stage_cfg, seed=config.seed + k + 1))
        histories[f"layer {k + 1}"] = (shallow, hist)
        with torch.no_grad():  # unroll: encoder layer k and its mirror in the decoder
            linear.weight.copy_(shallow.code.linear.weight)
            linear.bias.copy_(shallow.code.linear.bias)
            if tied:
                model.decoder.biases[n - 1 - k].copy_(shallow.decoder.biases[0])
            else:
                model.decoder.linears[n - 1 - k].weight.copy_(shallow.decoder.linears[0].weight)
                model.decoder.linears[n - 1 - k].bias.copy_(shallow.decoder.linears[0].bias)
            if k == 0 and model.offset is not None:
                model.offset.copy_(shallow.offset)
        H = _encode_all(shallow, H)
        lo_hi = (float(H.min()), float(H.max()))
    return histories
