"""`runlog run`'s output path: every byte passed through, run.log lines as before, in bulk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from runlog.cli.lines import Stream, clean
from runlog.folder.logfile import LogFile

RUNLOG = [sys.executable, "-m", "runlog"]


def run_to_file(tmp_path: Path, *cmd: str) -> tuple[subprocess.CompletedProcess, bytes, Path]:
    e = dict(os.environ)
    e.pop("RUNLOG_DIR", None)
    with open(tmp_path / "out.bin", "wb") as out:
        p = subprocess.run([*RUNLOG, "run", "--no-git", "--", *cmd], cwd=tmp_path, stdout=out,
                           stderr=subprocess.PIPE, env=e, timeout=300)
    (run_dir,) = [d for d in (tmp_path / "logs").iterdir() if d.is_dir() and not d.name.startswith(".")]
    return p, (tmp_path / "out.bin").read_bytes(), run_dir


def logged(run_dir: Path, tag: str = "OUT") -> list[str]:
    """The text of run.log's lines with this tag."""
    out = []
    for ln in (run_dir / "run.log").read_text().split("\n"):
        if ln[24:24 + 8].strip() == tag:
            out.append(ln[32:])
    return out


def test_a_million_lines_pass_through_byte_for_byte_and_each_is_logged(tmp_path):
    p, out, run_dir = run_to_file(tmp_path, "sh", "-c", "yes LINE | head -n 1000000")
    assert p.returncode == 0, p.stderr
    assert out == b"LINE\n" * 1_000_000
    lines = logged(run_dir)
    assert len(lines) == 1_000_000 and set(lines) == {"LINE"}
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_mixed_output_is_logged_as_the_line_by_line_path_logged_it(tmp_path):
    # colours dropped, \r bars at their final state, invalid UTF-8 replaced, an unfinished
    # last line kept, empty lines kept, a traceback tagged ERROR: many lines in each read
    (tmp_path / "mixed.py").write_text(textwrap.dedent("""\
        import sys
        out = sys.stdout.buffer
        for i in range(20000):
            out.write(b"line %d\\n" % i)
        out.write(b"\\x1b[32mgreen\\x1b[0m text\\n")
        out.write(b"".join(b"\\rbar %d/100" % i for i in range(101)) + b"\\n")
        out.write(b"caf\\xc3\\xa9 and bad \\xff byte\\n\\n")
        out.write(b"no newline at the end")
        out.flush()
        sys.stderr.write("warming up\\n" * 3)
        sys.stderr.write("Traceback (most recent call last):\\n  File \\"x.py\\", line 1\\n"
                         "ValueError: boom\\nafter\\n")
        """))
    p, out, run_dir = run_to_file(tmp_path, sys.executable, "mixed.py")
    assert p.returncode == 0, p.stderr
    assert out.startswith(b"line 0\nline 1\n") and out.endswith(b"\n\nno newline at the end")
    assert b"\x1b[32mgreen" in out and b"\rbar 57/100" in out  # passed through unchanged
    lines = logged(run_dir)
    assert lines[:20000] == [f"line {i}" for i in range(20000)]
    assert lines[20000:] == ["green text", "bar 100/100", "café and bad \ufffd byte", "",
                             "no newline at the end"]
    assert logged(run_dir, "ERR") == ["warming up"] * 3 + ["after"]
    assert logged(run_dir, "ERROR") == ["Traceback (most recent call last):", '  File "x.py", line 1',
                                        "ValueError: boom"]
    assert "ValueError: boom" in p.stderr.decode()


class Sink:
    """A LogFile writing to a real file, and the blocks on_block was given."""

    def __init__(self, path):
        self.log = LogFile(str(path))
        self.blocks = []

    def on_block(self, tag, buf, start, end, t):
        self.blocks.append((tag, buf[start:end]))


def test_lines_split_across_reads_and_a_line_longer_than_the_limit(tmp_path):
    sink = Sink(tmp_path / "run.log")
    s = Stream("OUT", sink.log, sink.on_block)
    s.pending.limit = 10  # a small limit, to see the cut without a 1 MiB line
    for piece in (b"ab", b"c\nde", b"f\n", b"0123456789ABCDEF\nx", b"\r", b"y\nlast",
                  b"\n1\n2\n3", b"\n", b"4\n5\n\n6"):
        s.feed(piece)
    s.close()
    sink.log.close()
    text = [ln[32:] for ln in (tmp_path / "run.log").read_text().split("\n")]
    assert text == ["abc", "def", "0123456789 … [6 more characters not kept]", "y", "last",
                    "1", "2", "3", "4", "5", "", "6", ""]
    assert [b for _, b in sink.blocks] == [b"abc", b"def", b"0123456789 \xe2\x80\xa6 [6 more "
                                           b"characters not kept]", b"y", b"last", b"1\n2",
                                           b"3", b"4\n5\n", b"6"]


def test_clean_matches_the_line_by_line_rule():
    from runlog.output import last_state

    lines = ["plain", "a\rb", "text\r", "\x1b[1mbold\x1b[0m\rnext", "   \rkept?", "x\r\r"]
    body = "\n".join(lines).encode()
    assert clean(body).decode().split("\n") == [last_state(ln) for ln in lines]


def test_the_quick_reading_of_runlog_run_agrees_with_the_parser():
    # `runlog run`'s plain command lines skip argparse (start-up cost); the parser is the judge
    from runlog.cli import _quick_run, make_parser

    lines = [
        ["run", "--", "python", "train.py", "--lr", "0.1"],
        ["--dir", "out", "run", "--note", "why", "--tag", "a", "--tag=b", "--name=n", "--no-git",
         "--", "make", "train"],
        ["run", "--metric-regex", r"top1=Acc@1 ([\d.]+)", "--no-text-metrics", "--", "sh", "x.sh"],
        ["run", "--note=", "--", "true", "--note", "inner"],
    ]
    for argv in lines:
        quick = vars(_quick_run(argv))
        full = vars(make_parser().parse_args(argv))
        assert {k: quick[k] for k in full if k != "command"} == {k: v for k, v in full.items()
                                                                 if k != "command"}, argv
    for argv in (["run", "--no-g", "--", "true"], ["run", "--note", "-x", "--", "true"],
                 ["run", "python", "x.py"], ["run", "-h"], ["ls"], ["--dir=x", "run", "--", "true"]):
        assert _quick_run(argv) is None, argv
