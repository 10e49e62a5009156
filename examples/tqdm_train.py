"""Progress bars and logging together: log lines print above the bar, and
run.log keeps the bar's final state once instead of every redraw.

    python examples/tqdm_train.py --steps 300
"""

import argparse
import logging
import time

from tqdm import tqdm

import runlog

log = logging.getLogger("train")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args()
    run = runlog.start()
    loss = 1.0
    for step in tqdm(range(1, args.steps + 1), desc="train"):
        loss *= 0.995
        run.metric("loss", loss, step=step)
        if step % args.log_every == 0:
            log.info("step %d loss %.4f", step, loss)
        time.sleep(0.002)


if __name__ == "__main__":
    main()
