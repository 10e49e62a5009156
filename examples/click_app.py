"""A click command: runlog records its parameters and which were given.

    python examples/click_app.py --lr 0.05 data.csv --note "smaller lr"

The same works for typer apps.
"""

import logging

import click

import runlog


@click.command()
@click.option("--lr", default=0.1, help="learning rate")
@click.option("--epochs", default=5)
@click.argument("data", default="train.csv")
def main(lr: float, epochs: int, data: str) -> None:
    run = runlog.start()
    loss = 1.0
    for epoch in range(1, epochs + 1):
        loss *= 1 - lr
        run.metric("loss", loss, step=epoch)
        logging.info("epoch %d on %s: loss %.4f", epoch, data, loss)


if __name__ == "__main__":
    main()
