"""A small, real training script: logistic regression by mini-batch SGD on synthetic data.

Copy the two runlog lines into your own script; everything else is ordinary
argparse, logging and numpy.

    python examples/train.py --lr 0.05 --epochs 20 --note "higher lr"
"""

import argparse
import logging

import numpy as np

import runlog

log = logging.getLogger(__name__)


def make_data(n: int, dim: int, noise: float, rng: np.random.Generator):
    w_true = rng.normal(size=dim)
    x = rng.normal(size=(n, dim))
    logits = x @ w_true + noise * rng.normal(size=n)
    y = (logits > 0).astype(np.float64)
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run = runlog.start()  # arguments, note, git state, log file, report at exit

    rng = np.random.default_rng(args.seed)
    x, y = make_data(args.samples, args.dim, args.noise, rng)
    split = int(0.8 * len(x))
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]
    w = np.zeros(args.dim)

    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(split)
        for i in range(0, split, args.batch_size):
            idx = order[i:i + args.batch_size]
            p = 1 / (1 + np.exp(-x_train[idx] @ w))
            grad = x_train[idx].T @ (p - y_train[idx]) / len(idx) + args.weight_decay * w
            w -= args.lr * grad
        p_val = 1 / (1 + np.exp(-x_val @ w))
        eps = 1e-12
        loss = float(-np.mean(y_val * np.log(p_val + eps) + (1 - y_val) * np.log(1 - p_val + eps)))
        acc = float(np.mean((p_val > 0.5) == y_val))
        run.log_metrics({"val_loss": loss, "val_acc": acc}, step=epoch)
        log.info("epoch %d/%d  val_loss %.4f  val_acc %.3f", epoch, args.epochs, loss, acc)

    log.info("final validation accuracy %.3f", acc)


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    main()
