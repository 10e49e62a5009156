"""Config libraries, other CLIs, progress bars and standard logging users — with the real packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def run(tmp_path: Path, body: str, *args: str, files: dict | None = None):
    (tmp_path / "s.py").write_text(textwrap.dedent(body))
    for name, text in (files or {}).items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    p = subprocess.run([sys.executable, "s.py", *args], cwd=tmp_path, capture_output=True,
                       text=True, env=env, timeout=120)
    runs = sorted(d for d in (tmp_path / "logs").iterdir() if d.is_dir() and not d.name.startswith("."))
    assert len(runs) == 1, (p.stdout, p.stderr)
    record = json.loads((runs[0] / "run.json").read_text())
    return p, runs[0], record


def test_dataclass_and_dict(tmp_path):
    p, d, r = run(tmp_path, """\
        import dataclasses, runlog
        @dataclasses.dataclass
        class Opt:
            name: str = "adam"
            betas: tuple = (0.9, 0.99)
        @dataclasses.dataclass
        class Cfg:
            lr: float = 0.1
            opt: Opt = dataclasses.field(default_factory=Opt)
        runlog.start(Cfg(lr=0.3), git=False)
        """)
    assert r["args"] == {"lr": 0.3, "opt": {"name": "adam", "betas": [0.9, 0.99]}}
    assert "opt.name=adam" in p.stderr  # flattened for display


def test_pydantic_model(tmp_path):
    pytest.importorskip("pydantic")
    _, _, r = run(tmp_path, """\
        import pydantic, runlog
        class Model(pydantic.BaseModel):
            layers: int = 2
            dropout: float = 0.1
        class Cfg(pydantic.BaseModel):
            lr: float = 0.01
            model: Model = Model()
        runlog.start(Cfg(lr=0.5), git=False)
        """)
    assert r["args"] == {"lr": 0.5, "model": {"layers": 2, "dropout": 0.1}}


def test_omegaconf_nested_kept_nested(tmp_path):
    pytest.importorskip("omegaconf")
    p, d, r = run(tmp_path, """\
        import runlog
        from omegaconf import OmegaConf
        cfg = OmegaConf.create({"lr": 0.1, "model": {"layers": 4, "act": "${act}"}, "act": "relu"})
        runlog.start(cfg, git=False)
        """)
    assert r["args"] == {"lr": 0.1, "model": {"layers": 4, "act": "relu"}, "act": "relu"}
    assert "model.layers=4" in (d / "run.log").read_text()


def test_hydra_app(tmp_path):
    pytest.importorskip("hydra")
    p, d, r = run(tmp_path, """\
        import logging, hydra, runlog
        log = logging.getLogger(__name__)
        @hydra.main(config_path="conf", config_name="config", version_base=None)
        def main(cfg):
            runlog.start(git=False)
            log.info("training with lr %s", cfg.lr)
        main()
        """, "lr=0.3", "model.layers=4", files={"conf/config.yaml": """\
            lr: 0.1
            model:
              layers: 2
              width: 64
            """})
    assert p.returncode == 0, p.stderr
    assert r["args"] == {"lr": 0.3, "model": {"layers": 4, "width": 64}}
    assert sorted(r["args_given"]) == ["lr", "model.layers"]
    log = (d / "run.log").read_text()
    assert log.count("training with lr 0.3") == 1
    # Hydra's own console handler prints the line; runlog does not print it again
    console = p.stdout + p.stderr
    assert console.count("training with lr 0.3") == 1
    hydra_logs = list((tmp_path / "outputs").rglob("s.log"))
    assert hydra_logs and "training with lr 0.3" in hydra_logs[0].read_text()


def test_click_command(tmp_path):
    pytest.importorskip("click")
    _, _, r = run(tmp_path, """\
        import click, runlog
        @click.command()
        @click.option("--lr", default=0.1)
        @click.option("--epochs", default=3)
        @click.argument("data", default="train.csv")
        def main(lr, epochs, data):
            runlog.start(git=False)
        main()
        """, "--lr", "0.5", "data.csv")
    assert r["args"] == {"lr": 0.5, "epochs": 3, "data": "data.csv"}
    assert sorted(r["args_given"]) == ["data", "lr"]


def test_typer_command(tmp_path):
    pytest.importorskip("typer")
    _, _, r = run(tmp_path, """\
        import typer, runlog
        def main(lr: float = 0.1, layers: int = 2, name: str = "x"):
            runlog.start(git=False)
        typer.run(main)
        """, "--layers", "5")
    assert r["args"] == {"lr": 0.1, "layers": 5, "name": "x"}
    assert r["args_given"] == ["layers"]


def test_tqdm_bars_do_not_flood_the_log_or_break_on_console(tmp_path):
    pytest.importorskip("tqdm")
    p, d, _ = run(tmp_path, """\
        import logging, runlog
        from tqdm import tqdm
        runlog.start(git=False)
        log = logging.getLogger("train")
        for i in tqdm(range(300), desc="epoch", mininterval=0):
            if i % 100 == 0:
                log.info("at step %d", i)
        for i in tqdm(range(50), leave=False, mininterval=0):
            pass
        print("done")
        """)
    log = (d / "run.log").read_text()
    assert log.count("epoch: ") == 1 and "300/300" in log
    assert "50/50" not in log  # a bar that cleared itself leaves nothing
    assert log.count("at step") == 3 and "\x1b" not in log and "\r" not in log
    # console lines were written above the bar, not into the middle of it
    assert "at step 100" in p.stderr
    for line in p.stderr.split("\n"):
        if "at step" in line:
            assert line.rsplit("\r", 1)[-1].lstrip().split(" ", 1)[1].strip().startswith(("INFO", "train"))


def test_basicconfig_before_start_keeps_its_handler_and_no_double_console(tmp_path):
    p, d, _ = run(tmp_path, """\
        import logging, runlog
        logging.basicConfig(level=logging.INFO, format="MINE %(message)s")
        runlog.start(git=False)
        logging.info("hello")
        """)
    assert p.stderr.count("hello") == 1 and "MINE hello" in p.stderr
    assert (d / "run.log").read_text().count("hello") == 1


def test_basicconfig_after_start_still_configures_logging(tmp_path):
    p, d, _ = run(tmp_path, """\
        import logging, runlog
        runlog.start(git=False)
        logging.basicConfig(level=logging.DEBUG, format="MINE %(levelname)s %(message)s")
        logging.debug("dbg")
        logging.info("inf")
        """)
    assert "MINE DEBUG dbg" in p.stderr and "MINE INFO inf" in p.stderr
    assert p.stderr.count("inf") == 1
    log = (d / "run.log").read_text()
    assert log.count("inf") == 1 and "dbg" not in log  # runlog's level stays INFO


def test_own_handler_added_after_start_is_not_logged_twice(tmp_path):
    _, d, _ = run(tmp_path, """\
        import logging, runlog
        runlog.start(git=False)
        log = logging.getLogger("mine")
        log.addHandler(logging.StreamHandler())  # bound to the captured stderr
        log.warning("careful")
        quiet = logging.getLogger("quiet")
        quiet.propagate = False
        quiet.addHandler(logging.StreamHandler())
        quiet.warning("only via my handler")
        """)
    log = (d / "run.log").read_text()
    assert log.count("careful") == 1
    assert log.count("only via my handler") == 1  # not propagated: kept from the captured stderr


def test_a_handler_added_or_replaced_between_prints_is_seen(tmp_path):
    # whether a handler of the script's writes through the tee is looked at again when
    # handlers are made or dropped: prints before, between and after must not hide one
    _, d, _ = run(tmp_path, """\
        import gc, logging, sys, runlog
        runlog.start(git=False)
        for i in range(3):
            print("before", i)
        log = logging.getLogger("mine")
        h = logging.StreamHandler()  # bound to the captured stderr
        log.addHandler(h)
        log.warning("first")
        print("between")
        log.removeHandler(h)
        del h
        gc.collect()  # the same number of handlers again, a new one last
        h2 = logging.StreamHandler(sys.stdout)
        log.addHandler(h2)
        log.warning("second")
        print("after")
        """)
    log = (d / "run.log").read_text()
    assert log.count("first") == 1 and log.count("second") == 1, log
    assert log.count("before") == 3 and "between" in log and "after" in log


def test_tqdm_logging_redirect_writes_each_record_once(tmp_path):
    # tqdm's handler writes the message, then its newline, in two writes through the
    # captured stderr: neither may be logged as output (nor glued to the next line)
    pytest.importorskip("tqdm")
    _, d, _ = run(tmp_path, """\
        import logging, runlog
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
        runlog.start(git=False)
        log = logging.getLogger("train")
        with logging_redirect_tqdm():
            for i in tqdm(range(3), mininterval=0):
                log.info("record %d", i)
                print("printed", i)
        print("after")
        """)
    lines = (d / "run.log").read_text().splitlines()
    for i in range(3):
        assert sum(f"record {i}" in ln for ln in lines) == 1, lines
        (printed,) = [ln for ln in lines if f"printed {i}" in ln]
        assert "record" not in printed and " OUT " in printed
    assert any(ln.endswith("OUT     after") for ln in lines), lines
