"""A small, real training script: logistic regression by mini-batch SGD on synthetic data.

Pure Python, so it runs right after `pip install -e .`. Copy the two runlog
lines into your own script; everything else is ordinary argparse and logging.

    python examples/train.py --lr 0.05 --epochs 20 --note "higher lr"
"""

import argparse
import logging
import math
import random

import runlog

log = logging.getLogger(__name__)


def make_data(n: int, dim: int, noise: float, rng: random.Random):
    w_true = [rng.gauss(0, 1) for _ in range(dim)]
    data = []
    for _ in range(n):
        x = [rng.gauss(0, 1) for _ in range(dim)]
        logit = sum(a * b for a, b in zip(w_true, x)) + noise * rng.gauss(0, 1)
        data.append((x, 1.0 if logit > 0 else 0.0))
    return data


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z > -30 else 0.0


def evaluate(w, data):
    loss = correct = 0.0
    for x, y in data:
        p = min(max(sigmoid(sum(a * b for a, b in zip(w, x))), 1e-12), 1 - 1e-12)
        loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
        correct += (p > 0.5) == (y == 1.0)
    return loss / len(data), correct / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run = runlog.start()  # arguments, note, git state, log file, report at exit

    rng = random.Random(args.seed)
    data = make_data(args.samples, args.dim, args.noise, rng)
    split = int(0.8 * len(data))
    train, val = data[:split], data[split:]
    w = [0.0] * args.dim

    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        for i in range(0, len(train), args.batch_size):
            batch = train[i:i + args.batch_size]
            grad = [0.0] * args.dim
            for x, y in batch:
                err = sigmoid(sum(a * b for a, b in zip(w, x))) - y
                for j in range(args.dim):
                    grad[j] += err * x[j]
            for j in range(args.dim):
                w[j] -= args.lr * (grad[j] / len(batch) + args.weight_decay * w[j])
        val_loss, val_acc = evaluate(w, val)
        run.log_metrics({"val_loss": val_loss, "val_acc": val_acc}, step=epoch)
        log.info("epoch %d/%d  val_loss %.4f  val_acc %.3f", epoch, args.epochs, val_loss, val_acc)

    log.info("final validation accuracy %.3f", val_acc)


if __name__ == "__main__":
    main()
