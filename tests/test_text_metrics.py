"""Metrics from plain output under `runlog run`: real programs, real tqdm, real run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runlog.textmetrics import TextMetrics, parse_line

RUNLOG = [sys.executable, "-m", "runlog"]


def runlog_run(tmp_path: Path, *cmd: str, flags=(), env=None):
    e = dict(os.environ, **(env or {}))
    for k in ("RUNLOG_DIR", "RUNLOG_NOTE"):
        e.pop(k, None)
    return subprocess.run([*RUNLOG, "run", "--no-git", *flags, "--", *cmd], cwd=tmp_path,
                          capture_output=True, text=True, env=e, timeout=120)


def script(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(textwrap.dedent(text))
    return name


def the_run(tmp_path: Path) -> Path:
    (run_dir,) = [p for p in (tmp_path / "logs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def points(run_dir: Path) -> list[dict]:
    f = run_dir / "metrics.jsonl"
    return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_a_scikit_learn_style_score_line_is_a_metric_everywhere(tmp_path):
    # what the scikit-learn benchmark printed, and nothing was recorded (issue 14)
    prog = script(tmp_path, "bench.py", """\
        import time
        print("Fitting 5 folds for each of 1 candidates, totalling 5 fits")
        print(f"started at {time.strftime('%H:%M:%S')}")
        print("score: 0.9970")
        print("n_samples: 1797")
        """)
    p = runlog_run(tmp_path, sys.executable, prog)
    assert p.returncode == 0, p.stderr
    assert "score: 0.9970" in p.stdout  # passed through unchanged
    run_dir = the_run(tmp_path)
    assert [(q["name"], q["value"], q["step"]) for q in points(run_dir)] == [("score", 0.997, 0)]
    assert record(run_dir)["metrics"]["score"]["last"] == 0.997
    assert "- Metrics: score 0.997" in p.stderr  # the report
    assert "score 0.997" in (run_dir / "report.md").read_text()
    ls = subprocess.run([*RUNLOG, "ls"], cwd=tmp_path, capture_output=True, text=True)
    header, row = ls.stdout.splitlines()[:2]
    assert "score" in header and "0.997" in row


def test_real_tqdm_with_set_postfix(tmp_path):
    pytest.importorskip("tqdm")
    prog = script(tmp_path, "bar.py", """\
        from tqdm import tqdm
        bar = tqdm(range(50), desc="train", mininterval=0)
        for i in bar:
            bar.set_postfix(loss=1.0 / (i + 1))
        bar.close()
        for _ in tqdm(range(10)):  # a bar without a postfix: nothing to read
            pass
        """)
    p = runlog_run(tmp_path, sys.executable, prog)
    assert p.returncode == 0, p.stderr
    assert "loss=0.02" in p.stderr  # tqdm's redraws reached the terminal
    run_dir = the_run(tmp_path)
    log = (run_dir / "run.log").read_text()
    assert log.count("train: 100%") == 1 and log.count("loss=") == 1  # the bar's final state
    assert [(q["name"], q["value"]) for q in points(run_dir)] == [("loss", 0.02)]


def test_hugging_face_trainer_log_lines(tmp_path):
    # the exact shapes transformers.Trainer prints with its default logging
    prog = script(tmp_path, "hf.py", """\
        print("{'loss': 0.6931, 'grad_norm': 1.2345678806304932, 'learning_rate': 5e-05, 'epoch': 0.5}")
        print("{'loss': 0.5012, 'grad_norm': 0.9876, 'learning_rate': 2.5e-05, 'epoch': 1.0}")
        print("{'eval_loss': 0.4821, 'eval_accuracy': 0.8125, 'eval_runtime': 1.234, "
              "'eval_samples_per_second': 103.7, 'eval_steps_per_second': 12.96, 'epoch': 1.0}")
        print("{'train_runtime': 12.5, 'train_samples_per_second': 20.48, "
              "'train_steps_per_second': 2.56, 'train_loss': 0.597, 'epoch': 1.0}")
        print("{'model_name': 'bert-base-uncased', 'lr': 0.001, 'batch_size': 32}")  # a config
        """)
    p = runlog_run(tmp_path, sys.executable, prog)
    assert p.returncode == 0, p.stderr
    run_dir = the_run(tmp_path)
    m = record(run_dir)["metrics"]
    assert [q["value"] for q in points(run_dir) if q["name"] == "loss"] == [0.6931, 0.5012]
    assert m["learning_rate"]["last"] == 2.5e-05 and m["eval_accuracy"]["last"] == 0.8125
    assert m["train_loss"]["last"] == 0.597 and m["epoch"]["last"] == 1.0
    assert "lr" not in m and "batch_size" not in m


def test_lightning_progress_bar_line(tmp_path):
    # a Lightning TQDMProgressBar epoch, as captured from a real run: redrawn with \r,
    # v_num is the logger's version, not a metric; then its validation bar
    prog = script(tmp_path, "pl.py", r"""
        import sys
        w = sys.stderr.write
        w("Epoch 0:  50%|█████     | 5/10 [00:00<00:00, 48.31it/s, v_num=0, train_loss=0.693]\r")
        w("Epoch 0: 100%|██████████| 10/10 [00:00<00:00, 52.10it/s, v_num=0, train_loss=0.412]\n")
        w("Validation DataLoader 0: 100%|██████████| 4/4 [00:00<00:00, 120.00it/s]\n")
        w("Epoch 1: 100%|██████████| 10/10 [00:00<00:00, 51.87it/s, v_num=0, train_loss=0.301, "
          "val_loss=0.350, val_acc=0.875]\n")
        w("`Trainer.fit` stopped: `max_epochs=2` reached.\n")
        """)
    p = runlog_run(tmp_path, sys.executable, prog)
    assert p.returncode == 0, p.stderr
    got = [(q["name"], q["value"], q["step"]) for q in points(the_run(tmp_path))]
    assert got == [("train_loss", 0.412, 0), ("train_loss", 0.301, 1), ("val_loss", 0.35, 1),
                   ("val_acc", 0.875, 1)]


def test_training_lines_with_their_steps(tmp_path):
    # nanoGPT's and a shell script's own wording
    prog = script(tmp_path, "train.sh", """\
        echo "step 0: train loss 4.2345, val loss 4.3456"
        echo "iter 10: loss 3.9012, time 12.34ms, mfu 3.45%"
        echo "iter 20: loss 3.5000, time 12.01ms, mfu 3.50%"
        echo "Epoch 3/10 - loss: 0.25 - acc: 0.91"
        echo "accuracy: 0.95"
        echo "accuracy: 0.96"
        """)
    p = runlog_run(tmp_path, "sh", prog)
    assert p.returncode == 0, p.stderr
    got = [(q["name"], q["value"], q["step"]) for q in points(the_run(tmp_path))]
    assert got == [("train_loss", 4.2345, 0), ("val_loss", 4.3456, 0), ("loss", 3.9012, 10),
                   ("loss", 3.5, 20), ("loss", 0.25, 3), ("acc", 0.91, 3),
                   ("accuracy", 0.95, 0), ("accuracy", 0.96, 1)]


def test_what_is_not_a_metric(tmp_path):
    pytest.importorskip("tqdm")
    prog = script(tmp_path, "noise.py", """\
        import argparse, logging, sys, time
        from tqdm import tqdm
        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
        logging.info("starting worker 3")
        print("12:30:01 started; date: 2026-11-29; time: 12:30:01")
        print("Running on http://127.0.0.1:7860 and http://localhost:8080/ (port: 8080)")
        print("torch: 2.1.0, Python 3.11.7, CUDA: 12.1.105")
        print("seed=42 epochs: 10 batch_size: 32 workers=4")
        print("lr: 0.001"); print("weight_decay: 0.01"); print("dropout: 0.1")  # a config printed as YAML
        print("throughput: 1234.5 samples/s, temperature=0.7")
        print(argparse.Namespace(lr=0.1, momentum=0.9))
        print("python train.py --lr=0.3 --wd=0.01")
        print("ETA: 0:01:02, 45% done, 3.2s elapsed, 9.50it/s")
        for _ in tqdm(range(10), mininterval=0):
            pass
        print("100%|██████████| 10/10 [00:01<00:00, 9.50it/s]")
        def inner():
            raise ValueError("lr: 0.5 is too high")
        inner()
        """)
    p = runlog_run(tmp_path, sys.executable, prog)
    assert p.returncode == 1
    run_dir = the_run(tmp_path)
    assert points(run_dir) == [] and record(run_dir)["metrics"] == {}
    log = (run_dir / "run.log").read_text()
    assert "ERROR   ValueError: lr: 0.5 is too high" in log  # the traceback was seen and left out


def test_metric_regex_both_forms_and_no_text_metrics(tmp_path):
    prog = script(tmp_path, "custom.sh", """\
        echo " * Acc@1 76.130 Acc@5 92.862"
        echo "result -> top5 = 93.1"
        echo "score: 0.5"
        echo '{"metric": "acc", "value": 0.9}'
        """)
    p = runlog_run(tmp_path, "sh", prog,
                   flags=["--metric-regex", r"top1=Acc@1 ([\d.]+)",
                          "--metric-regex", r"(?P<name>top\d) = (?P<value>[\d.]+)"])
    assert p.returncode == 0, p.stderr
    run_dir = the_run(tmp_path)
    m = record(run_dir)["metrics"]
    assert set(m) == {"top1", "top5", "acc"}  # the built-in rule is replaced; JSON lines stay
    assert m["top1"]["last"] == 76.13 and m["top5"]["last"] == 93.1
    assert "--metric-regex 'top1=Acc@1 ([\\d.]+)'" in record(run_dir)["command_line"]

    other = tmp_path / "b"
    other.mkdir()
    (other / "custom.sh").write_text((tmp_path / "custom.sh").read_text())
    p = runlog_run(other, "sh", "custom.sh", flags=["--no-text-metrics"])
    assert p.returncode == 0, p.stderr
    assert set(record(the_run(other))["metrics"]) == {"acc"}


def test_a_bad_metric_regex_is_one_line_and_makes_no_run(tmp_path):
    for regex in ["(?P<name>x", r"[\d.]+", "loss=no group"]:
        p = runlog_run(tmp_path, "true", flags=["--metric-regex", regex])
        assert p.returncode == 1
        assert p.stderr.startswith("runlog: error: --metric-regex") and p.stderr.count("\n") == 1
        assert "Traceback" not in p.stderr
    assert not (tmp_path / "logs").exists()


def test_explicit_metrics_beat_guessed_ones(tmp_path):
    # a program that records its metrics itself (runlog.start() + run.metric) and prints
    # them too: each point once, not twice; a name it only prints is still read
    prog = script(tmp_path, "api.py", """\
        import runlog
        print("loss: 0.9000")
        run = runlog.start()
        for i in range(3):
            run.metric("loss", 0.5 - i / 10, step=i)
            print(f"step {i} loss {0.5 - i / 10:.4f} grad_norm {i + 0.5}", flush=True)
        """)
    p = runlog_run(tmp_path, sys.executable, prog, env={"PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])})
    assert p.returncode == 0, p.stderr
    run_dir = the_run(tmp_path)
    from runlog.folder.metrics import read_points

    kept = read_points(str(run_dir))
    assert [q["value"] for q in kept if q["name"] == "loss"] == [0.5, 0.4, 0.3]
    assert [q["value"] for q in kept if q["name"] == "grad_norm"] == [0.5, 1.5, 2.5]
    m = record(run_dir)["metrics"]
    assert m["loss"]["count"] == 3 and m["grad_norm"]["count"] == 3
    assert "loss 0.3" in p.stderr  # the report

    other = tmp_path / "b"
    other.mkdir()
    script(other, "json.sh", """\
        echo "epoch 1/2 loss 0.9000 score: 0.7"
        echo '{"metric": "loss", "value": 0.9, "step": 1}'
        echo "epoch 2/2 loss 0.5000 score: 0.8"
        echo '{"metric": "loss", "value": 0.5, "step": 2}'
        """)
    p = runlog_run(other, "sh", "json.sh")
    m = record(the_run(other))["metrics"]
    assert m["loss"]["count"] == 2 and m["score"]["last"] == 0.8


@pytest.mark.parametrize("line, expected", [
    ("score: 0.9970", ([("score", 0.997)], None)),
    ("INFO:__main__:val_acc: 0.91", ([("val_acc", 0.91)], None)),
    ("[2026-11-29 12:30:01,123][INFO] loss=0.5", ([("loss", 0.5)], None)),
    ("epoch=3 step=1200 loss=0.5 acc=0.91", ([("loss", 0.5), ("acc", 0.91)], 1200)),
    ("Epoch 3/9  ━━━━━━━━ 45/100 0:00:01 • 0:00:02 30.12it/s v_num: 0 train_loss: 0.123",
     ([("train_loss", 0.123)], 3)),
    ("global_step=7 grad_norm=nan", ([("grad_norm", float("nan"))], 7)),
    ("tokens: 1,234.5", ([], None)),
    ("lr: 0.001", ([], None)),
    ("Keras: 1875/1875 [====] - 3s 1ms/step - loss: 0.2565 - accuracy: 0.9261",
     ([("loss", 0.2565), ("accuracy", 0.9261)], None)),
    ("top1_err=0.231 trainLoss=0.5 eval/f1=0.8 momentum=0.9",
     ([("top1_err", 0.231), ("trainLoss", 0.5), ("eval/f1", 0.8)], None)),
    ("version: 1.2.3", ([], None)),
    ('  File "train.py", line 12, in <module>', ([], None)),
    ("Adam(lr=0.001, betas=0.9)", ([], None)),
])
def test_the_rule_line_by_line(line, expected):
    got = parse_line(line)
    assert repr(got) == repr(expected)  # repr: nan == nan


def test_a_step_counts_per_name_and_blocks_without_candidates_cost_no_lines():
    tm = TextMetrics()
    assert tm.scan(b"x" * 100_000 + b"\nLINE\nLINE") == []
    assert tm.scan(b"loss: 0.5\nacc: 0.7\nloss: 0.4") == [("loss", 0.5, 0), ("acc", 0.7, 0),
                                                          ("loss", 0.4, 1)]


def test_a_metric_line_split_across_reads_is_read_once_whole(tmp_path):
    # reads land mid-line: the line a read finishes is scanned whole, and only once
    from runlog.cli.lines import Stream
    from runlog.folder.logfile import LogFile

    tm = TextMetrics()
    got = []
    s = Stream("OUT", LogFile(str(tmp_path / "run.log")),
               lambda tag, buf, start, end, t: got.extend(tm.scan(buf, start, end)))
    for piece in (b"step 1 lo", b"ss 0.5\nstep 2 loss 0.4\nacc", b"uracy: 0.9", b"1\nscore: 0.", b"7"):
        s.feed(piece)
    s.close()
    assert got == [("loss", 0.5, 1), ("loss", 0.4, 2), ("accuracy", 0.91, 0), ("score", 0.7, 0)]


def test_metric_regex_with_a_step_group():
    tm = TextMetrics([r"\[(?P<step>\d+)\] (?P<name>\w+)=(?P<value>[\d.]+)"])
    assert tm.scan(b"[7] bleu=31.2\n[8] bleu=32.5 chrf=0.61\nbleu=1.5") == [
        ("bleu", 31.2, 7), ("bleu", 32.5, 8)]
