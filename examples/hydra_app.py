"""A Hydra app: runlog records the composed config and which keys were overridden.

    python examples/hydra_app.py lr=0.3 model.layers=4 --note "deeper"

Hydra configures logging itself; runlog adds its run.log beside Hydra's own
log file without printing any line twice.
"""

import logging

import hydra

import runlog

log = logging.getLogger(__name__)


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg) -> None:
    run = runlog.start()  # the config (nested), the overrides, the note
    loss = 1.0
    for epoch in range(1, cfg.epochs + 1):
        loss *= 1 - cfg.lr / cfg.model.layers
        run.metric("loss", loss, step=epoch)
        log.info("epoch %d loss %.4f", epoch, loss)


if __name__ == "__main__":
    main()
