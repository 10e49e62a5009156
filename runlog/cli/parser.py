"""The subcommands' parsers but ``run``'s: each a small ``_add_x`` + ``_cmd_x``.

``_add_x(sub)`` adds one command's options; ``_cmd_x`` turns the parsed namespace into
plain keyword arguments for a command function that never sees argparse. ``runlog
run`` keeps its parser in ``cli/__init__.py`` beside the quick reading of its command
line, so a sweep trial's start-up never loads this module.
"""

from __future__ import annotations

from .common import CliError

TYPE_CHECKING = False  # typing itself costs a command 2 ms of start-up
if TYPE_CHECKING:
    import argparse


def _run_arg(p: argparse.ArgumentParser, nargs="?") -> None:
    p.add_argument("run", nargs=nargs, metavar="RUN",
                   help="run id, unique prefix of one, or -1 (newest), -2 …; default: newest")


def _add_tail(sub) -> None:
    p = sub.add_parser("tail", help="follow the newest run's log as it grows",
                       description="Follow a run's log like `tail -f`; when the run ends, print "
                                   "its status, duration and final metrics. Waits for a run if "
                                   "there is none yet.")
    _run_arg(p)
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                   help="lines of context to print first (default 10)")
    p.add_argument("--no-follow", action="store_true", help="print and exit, do not follow")
    p.add_argument("-g", "--grep", metavar="REGEX", help="only lines matching REGEX")
    p.add_argument("--level", metavar="LEVEL",
                   help="only lines at this level or above (DEBUG, INFO, WARNING, ERROR)")
    p.add_argument("-F", "--next", action="store_true",
                   help="wait for the next run to start and follow it, then the one after "
                        "(a sweep's trials, one by one) until Ctrl-C")
    p.set_defaults(func=_cmd_tail)


def _cmd_tail(a) -> int:
    from .tail import tail

    return tail(a.dir, a.run, lines=a.lines, follow=not a.no_follow, grep=a.grep, level=a.level,
                next_=a.next)


def _add_ls(sub) -> None:
    p = sub.add_parser("ls", help="list runs side by side, newest first",
                       description="One line per run: id, status, duration, note, the arguments "
                                   "that differ among the listed runs, and final metrics.")
    p.add_argument("-n", type=int, default=20, metavar="N", help="show N runs (default 20)")
    p.add_argument("--all", action="store_true", help="show every run")
    p.add_argument("--status", metavar="S",
                   help="only runs with this status (running, finished, failed, interrupted, "
                        "killed, pruned, lost); comma-separated for several")
    p.add_argument("--grep", metavar="TEXT", help="only runs whose id, note, notes or args hold TEXT")
    p.add_argument("--sort", metavar="METRIC", help="order by a final metric, best first")
    p.add_argument("--sweep", metavar="ID",
                   help="only the trials of this sweep (an id or a unique prefix of one)")
    p.add_argument("--group", action="store_true",
                   help="runs that differ only in their seed (an argument named seed, or a "
                        "sweep's --repeat) as one row: n, and each metric as mean ± std")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="fmt", action="store_const", const="json", help="JSON lines")
    fmt.add_argument("--csv", dest="fmt", action="store_const", const="csv", help="CSV")
    fmt.add_argument("--md", dest="fmt", action="store_const", const="md", help="a Markdown table")
    p.set_defaults(func=_cmd_ls)


def _cmd_ls(a) -> int:
    from .ls import ls

    return ls(a.dir, n=None if a.all else a.n, status=a.status, grep=a.grep, sort=a.sort,
              fmt=a.fmt, sweep=a.sweep, group=a.group)


def _add_show(sub) -> None:
    p = sub.add_parser("show", help="print a run's whole record readably",
                       description="The report, every argument, notes, git state and files.")
    _run_arg(p)
    p.add_argument("--patch", action="store_true", help="print the saved uncommitted changes")
    p.add_argument("--json", action="store_true", help="print the raw run.json")
    p.set_defaults(func=_cmd_show)


def _cmd_show(a) -> int:
    from .show import show

    return show(a.dir, a.run, patch=a.patch, as_json=a.json)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="reprint a run's final report, or copy it",
                       description="Reprint the final report (rebuilt from what was written "
                                   "for a run that never finished).")
    _run_arg(p)
    p.add_argument("--copy", action="store_true",
                   help="put it on the clipboard (OSC 52 over SSH)")
    p.add_argument("--format", choices=("text", "md"), default="md",
                   help="md (default) or plain text")
    p.set_defaults(func=_cmd_report)


def _cmd_report(a) -> int:
    from .show import report

    return report(a.dir, a.run, copy=a.copy, fmt=a.format)


def _add_note(sub) -> None:
    p = sub.add_parser("note", help="append a note to a run (opens $EDITOR without TEXT)",
                       description="Append a timestamped note to a run's notes.md. Notes are "
                                   "never rewritten. `runlog note TEXT` notes the newest run; "
                                   "`runlog note RUN TEXT` a given one (RUN: -N, an id, or a "
                                   "prefix of 8 or more characters).")
    p.add_argument("words", nargs="*", metavar="[RUN] TEXT", help="the run (optional) and the note")
    p.set_defaults(func=_cmd_note)


def _cmd_note(a) -> int:
    from .note import note

    return note(a.dir, a.words)


def _add_diff(sub) -> None:
    p = sub.add_parser("diff", help="compare two runs side by side",
                       description="Arguments, metrics, notes, commits and code changes "
                                   "between two runs.")
    p.add_argument("a", metavar="RUN_A")
    p.add_argument("b", metavar="RUN_B", nargs="?",
                   help="omitted: RUN_A is compared with its previous run of the same script; "
                        "'.': with the working tree (as --working)")
    p.add_argument("--working", action="store_true",
                   help="compare RUN_A's recorded code (commit + saved changes) with the working "
                        "tree of its repository now: the files that differ, with +/- lines")
    p.add_argument("--patch", action="store_true", help="also print the code changes as a diff")
    p.set_defaults(func=_cmd_diff)


def _cmd_diff(a) -> int:
    from .diff import diff, diff_working

    if a.working or a.b == ".":
        if a.working and a.b not in (None, "."):
            raise CliError("give RUN_B or --working, not both")
        return diff_working(a.dir, a.a, patch=a.patch)
    return diff(a.dir, a.a, a.b, patch=a.patch)


def _add_reproduce(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="make a working copy of a run's code and print how to re-run it",
        description="Make a working copy of RUN's recorded code state: a detached git worktree "
                    "at its commit with its saved changes (code.patch) applied, in DIR (default: "
                    "next to the repository, ../REPO-RUNID). The repository's own work tree, "
                    "index, HEAD and branches are not touched. Then say what differs in the "
                    "environment now (Python, package versions, GPUs, data) and print the command "
                    "to re-run it there.")
    _run_arg(p)
    p.add_argument("dest", nargs="?", metavar="DIR",
                   help="where to make the copy (must not exist or be empty; default "
                        "../REPO-RUNID next to the repository)")
    p.add_argument("--run", dest="run_it", action="store_true",
                   help="run it there as a new run in the same log directory, recorded as "
                        "`reproduces: RUN` and compared with RUN (reuses DIR if it is already "
                        "an unchanged copy)")
    p.add_argument("--note", help="the new run's note (default: 'reproduces RUN')")
    p.add_argument("--force", action="store_true",
                   help="make the copy even when the saved changes are incomplete (cut at 1 MB, "
                        "binary files)")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(a) -> int:
    from .reproduce import reproduce

    return reproduce(a.dir, a.run, a.dest, run=a.run_it, force=a.force, note=a.note)


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid or an Optuna optimisation over any command, in parallel",
        description="Run COMMAND once per trial, {NAME} in its words replaced by the trial's "
                    "value; every trial is an ordinary recorded run. Lists (a,b,c) and integer "
                    "ranges (2..4) make a grid; a float range (lo:hi or lo:hi:log) or --trials "
                    "makes an Optuna optimisation of --max/--min METRIC. "
                    "`runlog sweep show [ID]` prints a sweep's table again.")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=SPEC",
                   help="a parameter: a,b,c | 2..4 | lo:hi[:log] (repeatable)")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="trials at once (default 1, or one per GPU slot with --gpus); with "
                        "--slurm, the array's tasks")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--max", metavar="METRIC", help="maximise this metric (best first)")
    goal.add_argument("--min", metavar="METRIC", help="minimise this metric (best first)")
    p.add_argument("--trials", type=int, metavar="K",
                   help="optimisation budget: trials in the study, across all its workers")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage shared by workers: postgresql://…, sqlite:///study.db, "
                        "or journal:FILE (a journal file, no server needed)")
    p.add_argument("--slurm", metavar="OPTS", nargs="?", const="",
                   help="submit one Slurm job array of -j tasks, each a worker of the study; "
                        "OPTS go to sbatch (--slurm='--partition=gpu --gres=gpu:1')")
    p.add_argument("--detach", action="store_true",
                   help="with --slurm: return once the array is submitted")
    p.add_argument("--cancel-on-interrupt", action="store_true",
                   help="with --slurm: Ctrl-C cancels the array (scancel) without asking")
    p.add_argument("--gpus", metavar="IDS",
                   help="CUDA devices to share out (0,1,2,3 or auto): each running trial gets "
                        "its own CUDA_VISIBLE_DEVICES")
    p.add_argument("--gpus-per-trial", type=int, default=1, metavar="K",
                   help="devices per trial with --gpus (default 1)")
    p.add_argument("--repeat", type=int, metavar="K",
                   help="run each configuration K times with seeds 0..K-1: {seed} in COMMAND "
                        "is the seed, and $SEED is set; the table shows mean ± std (n) and "
                        "Optuna is told the mean")
    p.add_argument("--seeds", metavar="S,S,...",
                   help="as --repeat, with these seeds (--seeds 0,1,2)")
    p.add_argument("--prune", action="store_true",
                   help="stop unpromising trials early: Optuna's median pruner reads each "
                        "running trial's --max/--min metric by step; a stopped trial is "
                        "recorded as 'pruned'")
    p.add_argument("--worker", metavar="ID", help="==SUPPRESS==")  # argparse.SUPPRESS
    p.add_argument("--name", help="the sweep's (and Optuna study's) name")
    p.add_argument("--note", help="a note for every trial")
    p.add_argument("--tag", action="append", default=[], metavar="T", help="a tag for every trial")
    p.add_argument("cmd", nargs="...", metavar="-- COMMAND...")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(a) -> int:
    from .sweep_cmd import sweep

    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    return sweep(a.dir, cmd, a.param, jobs=a.jobs, maximize=a.max, minimize=a.min,
                 trials=a.trials, storage=a.storage, name=a.name, note=a.note, tags=a.tag,
                 slurm=a.slurm, detach=a.detach, cancel_on_interrupt=a.cancel_on_interrupt,
                 worker=a.worker, gpus=a.gpus, gpus_per_trial=a.gpus_per_trial,
                 repeat=a.repeat, seeds=a.seeds, prune=a.prune)


def _add_journal(sub) -> None:
    p = sub.add_parser("journal", help="write a self-contained HTML journal of the runs",
                       description="One HTML file, no network needed: runs newest first, grouped "
                                   "by day, with notes, metrics, curves, what changed since the "
                                   "previous run, and a compare view.")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write it "
                   "(default: journal.html in the log directory)")
    p.add_argument("-n", type=int, metavar="N",
                   help="the newest N runs (default 500)")
    p.add_argument("--all", action="store_true", help="every run")
    p.add_argument("--since", metavar="WHEN",
                   help="runs started since a date (2026-11-01) or within an age (12h, 7d)")
    p.add_argument("--open", action="store_true", help="open it in the browser")
    p.set_defaults(func=_cmd_journal)


def _cmd_journal(a) -> int:
    from .journal import journal

    return journal(a.dir, a.output, open_it=a.open, limit=a.n, every=a.all, since=a.since)


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="draw runs' metric curves (terminal, or PNG/SVG)",
                       description="Curves of one or more runs: a small plot in the terminal, or "
                                   "with -o a PNG/SVG/PDF for a notes app (needs matplotlib: "
                                   "pip install 'runlog[plot]').")
    p.add_argument("runs", nargs="*", metavar="RUN", help="runs to draw (default: the newest)")
    p.add_argument("-m", "--metric", help="only this metric")
    p.add_argument("-o", "--output", metavar="FILE", help="write a .png, .svg or .pdf")
    p.add_argument("--group", action="store_true",
                   help="each RUN with the runs that differ from it only in their seed: their "
                        "mean curve, shaded ± std in a file")
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(a) -> int:
    from .plot import plot

    return plot(a.dir, a.runs, metric=a.metric, output=a.output, group=a.group)


def _add_sync(sub) -> None:
    p = sub.add_parser("sync", help="send runs to an MLflow tracking server",
                       description="Send runs to MLflow (pip install 'runlog[mlflow]'): "
                                   "arguments as params, metric series, status, times, note, "
                                   "git commit and files. Syncing again only adds what is new.")
    p.add_argument("target", choices=["mlflow"], help="where to send them (mlflow)")
    p.add_argument("runs", nargs="*", metavar="RUN", help="runs to send (default: all)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="the MLflow server (default: $MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", metavar="NAME", help="MLflow experiment (default: runlog)")
    p.add_argument("--watch", action="store_true",
                   help="keep syncing new and growing runs until Ctrl-C")
    p.set_defaults(func=_cmd_sync)


def _cmd_sync(a) -> int:
    from .sync import sync

    return sync(a.dir, a.target, a.runs, tracking_uri=a.tracking_uri,
                experiment=a.experiment, watch=a.watch)


BUILDERS = {"tail": _add_tail, "ls": _add_ls, "show": _add_show, "report": _add_report,
            "note": _add_note, "diff": _add_diff, "reproduce": _add_reproduce, "sweep": _add_sweep,
            "journal": _add_journal, "plot": _add_plot, "sync": _add_sync}
