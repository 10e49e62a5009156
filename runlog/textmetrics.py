"""Metrics from plain output: the lines a program prints, read as ``runlog run`` passes them on.

The rule (README, "Metrics from plain output") is conservative on purpose: a
value is taken only where a person reading the line would call it a metric.

- ``name: number`` (a space after the colon) and ``name=number`` pairs, where
  the number is a float (a decimal point, an exponent, nan or inf) and the name
  is called like a metric (``METRIC_WORDS``: ``val_acc``, ``score``, ``top1_err``).
  A printed config (``lr: 0.001``) or an integer (``port: 8080``, ``seed=42``)
  is not a metric — except on a *training line*.
- A training line names its step (``step 12``, ``iter 12``, ``Epoch 3/10``,
  ``global_step=12``) or is a progress bar (``45%|``, ``| 45/100 [``): there,
  any name and integer values count too, and so do ``name float`` pairs (``loss 0.31``);
  ``train``/``val``/``test``/``eval`` before a name joins it (``val loss 0.2``
  is ``val_loss``).
- A one-line dict that has a ``loss``-ish, ``epoch`` or ``step`` key (the
  Hugging Face Trainer's ``{'loss': 0.69, 'learning_rate': 5e-05, 'epoch': 0.5}``):
  every number in it.
- Never a metric: a number followed by ``:``, ``/``, ``%``, ``-``, a letter or
  another ``.digit`` (times, dates, fractions, percentages, ``it/s``, units,
  versions); a name glued to the text before it (``host:8080``, ``--lr=0.1``);
  ``name=value`` inside a call or repr (``Namespace(lr=0.1)``); the step words
  themselves; names that are never metrics (``line``, ``port``, ``pid``,
  ``seed``, ``version``, ``v_num``, …); lines of a Python traceback (the caller
  leaves those out).
- The step of a point is the line's own step number (``step``/``global_step``
  before ``iter`` before ``epoch``), else how many points of that name came before.

``--metric-regex`` replaces the rule: ``(?P<name>…)`` and ``(?P<value>…)``
groups (and optionally ``(?P<step>…)``), or ``NAME=REGEX`` whose ``value``
group (else its first group) is the value of metric NAME.
"""

from __future__ import annotations

import re

class _Lazy:
    """A pattern compiled when first used: ``runlog run`` starts the program first."""

    def __init__(self, *args):
        self._args = args

    def __getattr__(self, name: str):
        rx = self.__dict__.get("_rx")
        if rx is None:
            rx = self._rx = re.compile(*self._args)
        value = getattr(rx, name)
        setattr(self, name, value)  # found directly from now on
        return value


_NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|inf)\b"
_END = r"(?=$|[\s;|)\]}]|,(?!\d)|\.(?:\s|$))"
# a pair: the name starts a word (at the line's start or after a space or , ; | ( [ { :)
_PAIR = _Lazy(
    r"(?<![^\s,;|(\[{:])(?P<name>[A-Za-z][A-Za-z0-9_]*(?:[./-][A-Za-z0-9_]+)*)"
    r"(?P<sep>[ \t]*=[ \t]*|:[ \t]+|[ \t]+)(?P<value>" + _NUM + ")" + _END)
_STEP = _Lazy(r"(?<![\w.-])(?P<word>global_step|step|iteration|iter|epoch)"
                   r"(?:[ \t]*[:=#][ \t]*|[ \t]+)(?P<n>\d+)(?=$|[\s,;:|/)\]])", re.I)
_STEP_RANK = {"global_step": 0, "step": 0, "iteration": 1, "iter": 1, "epoch": 2}
_BAR = _Lazy(r"\d%\||\|[ \t]*\d+/\d+[ \t]*\[")
_CALL = _Lazy(r"[A-Za-z_]\w*\([^()]*\)")
_DICT_PAIR = _Lazy(r"""['"](?P<name>[A-Za-z_][\w./-]*)['"]\s*:\s*(?P<value>""" + _NUM
                        + r")(?=\s*[,}])")
_QUALIFIERS = frozenset({"train", "val", "valid", "validation", "test", "eval", "dev"})
NEVER = frozenset({
    "line", "lines", "port", "pid", "ppid", "uid", "gid", "seed", "version", "v_num", "rank",
    "local_rank", "world_size", "year", "month", "day", "hour", "minute", "second", "id",
    "gpu", "gpus", "cuda", "cudnn", "python", "torch", "device", "batch_size", "num_workers",
    "workers", "nodes", "node", "job", "job_id", "task", "pages", "page", "total", "of",
})
STEP_WORDS = frozenset(_STEP_RANK)
# what a metric is called, as a word of its name (val_acc, eval/f1, trainLoss, top1_err);
# outside a training line only such names count: a printed config (lr: 0.001) is no metric
METRIC_WORDS = frozenset({
    "loss", "acc", "accuracy", "score", "f1", "auc", "roc", "precision", "recall", "error",
    "err", "mse", "mae", "rmse", "mape", "bleu", "rouge", "chrf", "meteor", "perplexity",
    "ppl", "iou", "miou", "map", "top1", "top5", "reward", "return", "psnr", "ssim", "wer",
    "cer", "dice", "r2", "fid", "nll", "elbo", "bpd", "bpc", "logloss", "metric", "corr",
    "pearson", "spearman", "mcc", "kappa", "ndcg", "mrr", "hit", "hits",
})
_WORD_SPLIT = _Lazy(r"[_./-]+")


def looks_like_metric(name: str) -> bool:
    """Whether a (lower-case) name is called like a metric."""
    return any(w in METRIC_WORDS or w.endswith(("loss", "acc", "accuracy", "error", "score"))
               for w in _WORD_SPLIT.split(name))
# where a metric may be, found by C loops before any Python step: a colon + space or an
# equals sign before a number; on a training line (a step word or a bar), a float
_COLON_NUM = _Lazy(rb"(?::[ \t]+|=[ \t]*)[-+.]?[\dnNiI]")
_FLOAT = _Lazy(rb"\d\.\d")
_TRAINING_WORDS = _Lazy(rb"step|Step|STEP|iter|Iter|ITER|epoch|Epoch|EPOCH|%\||it/s|s/it")


def candidate_lines(body: bytes, start: int = 0, end: int | None = None) -> list[bytes]:
    """The lines of ``body[start:end]`` that may hold a metric by the built-in rule. Most
    output has none, and is passed over by single-character searches (memchr) before any
    regex (they look at all of ``body``: a false alarm costs a look, never a point)."""
    pairs = b"=" in body or (b":" in body and (b": " in body or b":\t" in body))
    training = b"." in body and _TRAINING_WORDS.search(body) is not None
    if not pairs and not training:
        return []
    if start or (end is not None and end < len(body)):
        body = body[start:end]
    out = []
    for ln in body.split(b"\n"):
        if pairs and _COLON_NUM.search(ln) or training and b"." in ln and _FLOAT.search(ln):
            out.append(ln)
    return out


def _is_float(text: str) -> bool:
    return not text.lstrip("+-").isdigit()


def _number(text: str) -> float | int:
    return float(text) if _is_float(text) else int(text)


def line_step(line: str) -> int | None:
    """The line's own step number: ``step``/``global_step``, else ``iter``, else ``epoch``."""
    best = None
    for m in _STEP.finditer(line):
        rank = _STEP_RANK[m.group("word").lower()]
        if best is None or rank < best[0]:
            best = (rank, int(m.group("n")))
    return None if best is None else best[1]


def _dict_line(s: str) -> tuple[list[tuple[str, float | int]], int | None]:
    pairs = [(m.group("name"), m.group("value")) for m in _DICT_PAIR.finditer(s)]
    keys = [k.lower() for k, _ in pairs]
    if "metric" in s and ("'metric'" in s or '"metric"' in s):
        return [], None  # a JSON metric line: read as one elsewhere
    if not any("loss" in k or k in ("epoch", "step", "global_step") for k in keys):
        return [], None  # a config printed as a dict, not a log of metrics
    step = None
    out = []
    for name, value in pairs:
        if name.lower() in ("step", "global_step") and not _is_float(value):
            step = int(value)
            continue
        out.append((name, _number(value)))
    return out, step


def parse_line(line: str) -> tuple[list[tuple[str, float | int]], int | None]:
    """The metrics of one printed line by the built-in rule, and the line's own step."""
    s = line.strip()
    if len(s) < 3:
        return [], None
    if len(s) > 4096:
        s = s[:4096]
    if s[0] == "{" and s[-1] == "}":
        return _dict_line(s)
    step = line_step(s)
    training = step is not None or _BAR.search(s) is not None
    while "(" in s and "=" in s:  # name=value inside a call or repr is an argument
        s2 = _CALL.sub(" ", s)
        if s2 == s:
            break
        s = s2
    out = []
    for m in _PAIR.finditer(s):
        name, sep, value = m.group("name"), m.group("sep"), m.group("value")
        lower = name.lower()
        if lower in NEVER or lower in STEP_WORDS:
            continue
        spaced = "=" not in sep and ":" not in sep
        if not _is_float(value) and (spaced or not training):
            continue  # an integer is a metric only as name=N / name: N on a training line
        if not training and (spaced or not looks_like_metric(lower)):
            continue  # outside training lines, only names a metric goes by (not lr: 0.001)
        st = m.start()
        if st > 2 and s[st - 1] == " ":  # "val loss 0.2" is val_loss
            word = s[s.rfind(" ", 0, st - 1) + 1:st - 1]
            if word.lower() in _QUALIFIERS:
                name = f"{word}_{name}"
        out.append((name, _number(value)))
    return out, step


class Custom:
    """``--metric-regex``: ``(?P<name>)`` + ``(?P<value>)`` groups, or ``NAME=REGEX``."""

    def __init__(self, spec: str):
        self.spec = spec
        self.name = None
        pattern = spec
        head, eq, rest = spec.partition("=")
        if eq and "(?P<name>" not in spec and re.fullmatch(r"[A-Za-z_][\w./-]*", head):
            self.name, pattern = head, rest
        try:
            self.rx = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"--metric-regex {spec!r}: {e}") from None
        groups = self.rx.groupindex
        if self.name is None and not ("name" in groups and "value" in groups):
            raise ValueError(f"--metric-regex {spec!r}: needs (?P<name>...) and (?P<value>...) "
                             "groups, or the form NAME=REGEX")
        if self.name is not None and "value" not in groups and self.rx.groups < 1:
            raise ValueError(f"--metric-regex {spec!r}: needs a group for the value")
        self.value_group = "value" if "value" in groups else 1

    def parse(self, line: str) -> list[tuple[str, float | int, int | None]]:
        out = []
        for m in self.rx.finditer(line):
            text = m.group(self.value_group)
            try:
                value = _number(text.strip())
            except (ValueError, AttributeError):
                continue
            name = self.name or m.group("name")
            if not name:
                continue
            step = None
            if "step" in self.rx.groupindex and m.group("step"):
                try:
                    step = int(m.group("step"))
                except ValueError:
                    step = None
            out.append((name, value, step))
        return out


class TextMetrics:
    """Reads metric points out of printed lines; keeps the count that is a point's step."""

    def __init__(self, regexes=()):
        self.custom = [Custom(r) for r in regexes]
        self.counts: dict[str, int] = {}

    def scan(self, body: bytes, start: int = 0,
             end: int | None = None) -> list[tuple[str, float | int, int]]:
        """The points in whole lines (cleaned, joined by newlines): ``body[start:end]``."""
        if self.custom:
            text = body[start:end].decode()
            if not any(c.rx.search(text) for c in self.custom):
                return []
            points = []
            for line in text.split("\n"):
                for c in self.custom:
                    found = c.parse(line)
                    if found:
                        own = None if all(s is not None for _, _, s in found) else line_step(line)
                        points += [self._point(n, v, s if s is not None else own)
                                   for n, v, s in found]
            return points
        points = []
        for raw in candidate_lines(body, start, end):
            found, step = parse_line(raw.decode())
            points += [self._point(n, v, step) for n, v in found]
        return points

    def _point(self, name: str, value, step: int | None):
        n = self.counts.get(name, 0)
        self.counts[name] = n + 1
        return name, value, (n if step is None else step)
