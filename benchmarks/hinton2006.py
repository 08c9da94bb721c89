"""hinton2006: the deep autoencoder of Hinton & Salakhutdinov (Science, 2006) on MNIST.

Network 784-1000-500-250-30 with a mirrored decoder, linear 30-unit code, trained with Adam
on Bernoulli cross-entropy: end to end, or (--pretrain-epochs N) after greedy layer-wise
pretraining with shallow autoencoders (aekit.pretrain; the published recipe pretrains RBMs),
the pretraining time counted in the budget. Metric, as published:
squared error summed over the 784 pixels (in [0, 1]), averaged over the 10,000 test
images, no clipping. Published: deep autoencoder 3.00, logistic PCA 8.01, PCA-30 13.87.

The test error is measured after every epoch, with the wall-clock minutes so far, so the
result shows when each published level is crossed. Results are rewritten after each
epoch, so an interrupted run still leaves its curve.

    python benchmarks/hinton2006.py [--minutes 15] [--activation relu] [--pretrain-epochs 0] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import load_mnist, machine_info, write_result

PUBLISHED = {"deep_autoencoder": 3.00, "logistic_pca": 8.01, "pca_30": 13.87}


def test_error(model, X_test: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        err = sum(((model.reconstruct(X_test[i:i + 2000]) - X_test[i:i + 2000]) ** 2).sum().item()
                  for i in range(0, X_test.shape[0], 2000))
    model.train()
    return err / X_test.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0, help="training time budget (wall clock)")
    ap.add_argument("--epochs", type=int, default=40, help="epochs the learning-rate schedule spans")
    ap.add_argument("--activation", default="relu", choices=["relu", "sigmoid", "tanh"])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pretrain-epochs", type=int, default=0, help="greedy layer-wise epochs per layer (0: none)")
    ap.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                    help="the loop's arithmetic (bfloat16: opt-in mixed precision; test errors in float32)")
    ap.add_argument("--name", default="hinton2006")
    ap.add_argument("--adam-kernel", default="loop", choices=["loop", "foreach"],
                    help="'loop': the optimiser aekit's loop makes (fused where available); 'foreach': "
                         "PyTorch's default Adam kernel, as the loop used before issue 11")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import aekit.train
    from aekit.model import build_model
    from aekit.train import TrainConfig, train

    if args.adam_kernel == "foreach":
        aekit.train.make_optimizer = lambda params, cfg: torch.optim.Adam(list(params), lr=cfg.learning_rate)

    data = load_mnist()
    X, X_test = torch.from_numpy(data.X_train), torch.from_numpy(data.X_test)
    settings = dict(n_components=30, hidden_layer_sizes=(1000, 500, 250), activation=args.activation,
                    code_activation="linear", loss="bce")
    torch.manual_seed(0)
    model = build_model(784, **settings)
    model.init_from_data(X)
    curve = []
    result = {"benchmark": "hinton2006", "machine": machine_info(), "published": PUBLISHED,
              "settings": vars(args), "network": [784, 1000, 500, 250, 30, 250, 500, 1000, 784],
              "metric": "test squared error summed over 784 pixels, mean over 10,000 images, no clipping",
              "curve": curve}
    t_start = time.perf_counter()

    def after_epoch(record) -> bool:
        minutes = (time.perf_counter() - t_start) / 60  # training time so far (evaluation excluded below)
        err = test_error(model, X_test)
        curve.append({"epoch": record["epoch"], "minutes": round(minutes, 3), "train_loss": round(record["loss"], 4),
                      "test_squared_error": round(err, 4)})
        result["best_test_squared_error"] = min(c["test_squared_error"] for c in curve)
        for key, level in PUBLISHED.items():
            hit = next((c for c in curve if c["test_squared_error"] <= level), None)
            result[f"minutes_to_beat_{key}"] = None if hit is None else hit["minutes"]
        result["minutes_trained"] = round(minutes, 3)
        write_result(args.name, result)
        print(f"epoch {record['epoch']}: {minutes:.1f} min, test squared error {err:.3f}", flush=True)
        return minutes >= args.minutes

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, lr_schedule="cosine", seed=0,
                      precision=args.precision)
    if args.pretrain_epochs:
        from aekit.pretrain import greedy_pretrain

        stages = greedy_pretrain(model, X, settings, cfg, epochs=args.pretrain_epochs, learning_rate=args.lr,
                                 data_loss="bce", value_range=(0.0, 1.0))
        result["pretrain"] = {name: {"epochs": len(h), "first_loss": round(h[0]["loss"], 4),
                                     "last_loss": round(h[-1]["loss"], 4)} for name, (_, h) in stages.items()}
        result["pretrain_minutes"] = round((time.perf_counter() - t_start) / 60, 3)
        result["unrolled_test_squared_error"] = round(test_error(model, X_test), 4)
        print(f"greedy pretraining: {result['pretrain_minutes']:.1f} min, unrolled test squared error "
              f"{result['unrolled_test_squared_error']:.3f}", flush=True)
    train(model, X, cfg, callback=after_epoch)


if __name__ == "__main__":
    main()
