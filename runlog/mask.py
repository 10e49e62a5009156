"""Secrets stay out: values that look like credentials become ``***``.

A value is known to be a secret in three ways:

- by its name (``is_secret``): an argument, an option or a ``NAME=value`` word
  whose name holds token, secret, password, passwd, api key, access key,
  private key or credential (``RUNLOG_MASK=word,word`` adds words);
- by the script's parser (``secret_options``): every spelling argparse accepts
  for an option whose dest or option strings look secret, short aliases
  (``-p x``, ``-px``) and abbreviations (``--pass x``) included;
- by its shape (``mask_text``): the password of a URL, ``scheme://user:PASS@host``,
  and a query parameter with a secret-looking name, whatever the value is called.

Nothing here compiles a regular expression at import: ``re`` is imported on
the first string that holds ``://``.
"""

from __future__ import annotations

import os

MASK = "***"
# matched in the lower-cased name with "-" and "_" removed: API_KEY, api-key, apikey
_BASE = ("token", "secret", "password", "passwd", "passphrase", "apikey", "accesskey", "privatekey",
         "credential")
_cache: tuple[str, tuple[str, ...]] = ("", _BASE)
_MIN_ABBREV = 3  # an abbreviation (--api for --api-key) has at least this many characters
_AUTH_END = "/?#\"'`<>"  # end a URL's authority: its path, or a quote in free text


def _norm(name: str) -> str:
    return str(name).lower().replace("-", "").replace("_", "")


def _words() -> tuple[str, ...]:
    global _cache
    extra = os.environ.get("RUNLOG_MASK", "")
    if _cache[0] != extra:
        _cache = (extra, _BASE + tuple(_norm(w) for w in extra.split(",") if w.strip()))
    return _cache[1]


# "token" alone names a credential only as the name's last word (HF_TOKEN, access_token,
# --hf-token), and not a tokenizer's special tokens: max_tokens, tokenizer, pad_token_id
# and bos_token are settings an ML comparison needs to see.
_LAST_ONLY = "token"
_SPECIAL_TOKENS = {"bos", "eos", "pad", "unk", "sep", "cls", "mask", "start", "end", "stop",
                   "special", "image", "eot", "sot"}


def _name_words(name: str) -> list[str]:
    """``hfToken``, ``HF_TOKEN``, ``--hf-token``, ``a.b token`` → lower-case words."""
    words, cur = [], ""
    prev = ""
    for c in str(name):
        if not c.isalnum():
            if cur:
                words.append(cur)
            cur = ""
        elif c.isupper() and prev.islower():
            words.append(cur)
            cur = c.lower()
        else:
            cur += c.lower()
        prev = c
    if cur:
        words.append(cur)
    return words


def is_secret(name: str) -> bool:
    """Whether a name looks like a credential's (RUNLOG_MASK=word,word adds words)."""
    n = _norm(name)
    if any(w in n for w in _words() if w != _LAST_ONLY):
        return True
    if _LAST_ONLY not in n:
        return False
    words = _name_words(name)
    return (len(words) > 0 and words[-1] == _LAST_ONLY
            and not (len(words) > 1 and words[-2] in _SPECIAL_TOKENS))


# ---------------------------------------------------------------- URLs and free text

_res = None  # (a URL's scheme, a query parameter), compiled on first use


def _compiled():
    global _res
    if _res is None:
        import re

        _res = (re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://"),
                re.compile(r"([?&;])([^=?&;#\s]+)=([^&;#\s\"'`<>]*)"))
    return _res


def _token_like(user: str) -> bool:
    """A URL's user that is a token (``https://ghp_x…@github.com``), not a login name."""
    return (len(user) >= 20 and any(c.isdigit() for c in user)
            and any(c.isalpha() for c in user))


def _password_span(s: str, p: int) -> tuple[int, int] | None:
    """Where the secret is in the URL whose authority starts at ``s[p]``, if it has one."""
    end = p
    while end < len(s) and not s[end].isspace():
        end += 1
    word = s[p:end]
    # the authority ends at the path, or at a quote in free text ("…@h","x@y")
    cut = min((i for i in (word.find(c) for c in _AUTH_END) if i >= 0), default=len(word))
    auth = word[:cut]
    at = auth.rfind("@")
    if at >= 0:  # user:password@host, the last @ before the path (urllib's reading)
        user, colon, pw = auth[:at].partition(":")
        if colon and pw:
            return p + len(user) + 1, p + at
        if not colon and _token_like(user):
            return p, p + at
        return None
    # a password holding a "/" (base64) or a quote: user:ab/cd@host
    user, colon, rest = auth.partition(":")
    at = word.find("@")
    if at < 0 or not colon or not user or "[" in user:
        return None
    if not rest or rest.isdigit():  # host:8080/path@x is a host and its port
        return None
    return p + len(user) + 1, p + at


def _query_param(m) -> str:
    if m.group(3) and is_secret(m.group(2)):
        return f"{m.group(1)}{m.group(2)}={MASK}"
    return m.group(0)


def mask_text(s: str) -> str:
    """``s`` with the credentials of every URL in it masked: ``scheme://user:PASS@host``
    becomes ``scheme://user:***@host``; a token used as the user
    (``https://TOKEN@host``) and the value of a secret-looking query parameter
    (``?access_token=…``, ``;password=…``) become ``***``. A string without
    ``://`` is returned as it is."""
    if not isinstance(s, str) or "://" not in s:
        return s
    scheme, query = _compiled()
    out = []
    pos = 0
    for m in scheme.finditer(s):
        if m.start() < pos:
            continue
        span = _password_span(s, m.end())
        if span is not None:
            out += [s[pos:span[0]], MASK]
            pos = span[1]
    out.append(s[pos:])
    text = "".join(out)
    return query.sub(_query_param, text) if "=" in text else text


# ---------------------------------------------------------------- arguments


def mask_args(args):
    """A copy of an argument mapping with secrets masked: the value of a
    secret-looking name (nested too) becomes ``***``, and every string is
    passed through ``mask_text``."""
    if isinstance(args, dict):
        return {k: (MASK if is_secret(k) and v not in (None, "", False) and not isinstance(v, dict)
                    else mask_args(v)) for k, v in args.items()}
    if isinstance(args, list):
        return [mask_args(v) for v in args]
    if isinstance(args, tuple):
        return tuple(mask_args(v) for v in args)
    if isinstance(args, str):
        return mask_text(args)
    return args


def secret_options(parser) -> list[str]:
    """Every option string (long and short) of ``parser``'s options that take a value
    and whose dest or any option string looks secret, subcommands' parsers included.
    Flags (``store_true``, ``count``, …) take no value and are left out."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(p, depth: int) -> None:
        if id(p) in seen or depth > 10:
            return
        seen.add(id(p))
        for action in getattr(p, "_actions", ()):
            strings = list(getattr(action, "option_strings", None) or ())
            if strings and getattr(action, "nargs", None) != 0 and (
                    is_secret(getattr(action, "dest", "") or "")
                    or any(is_secret(o) for o in strings)):
                found.extend(o for o in strings if o not in found)
            subs = getattr(action, "_name_parser_map", None)
            if isinstance(subs, dict):
                for sub in subs.values():
                    walk(sub, depth + 1)

    try:
        walk(parser, 0)
    except Exception:  # a parser of an unusual kind: the names still mask what they can
        return []
    return found


def _dashes(word: str) -> int:
    """How many prefix characters start an option word (0 for a value)."""
    if len(word) < 2 or word[0].isalnum() or word[0].isspace():
        return 0
    return 2 if word[1] == word[0] else 1


def _abbreviates(key: str, longs: list[str]) -> bool:
    """``--pass`` abbreviates a secret option (of the parser, or a built-in word)."""
    d = _dashes(key)
    if d == 0 or len(key) - d < _MIN_ABBREV:
        return False
    if any(o.startswith(key) for o in longs):
        return True
    if d != 2:
        return False
    n = _norm(key[2:])
    return len(n) >= _MIN_ABBREV and any(w.startswith(n) for w in _words())


def _is_value(word: str) -> bool:
    """Whether argparse could take ``word`` as an option's value (``--lr`` is an option)."""
    return not (word == "--" or (word.startswith("--") and word[2:3].isalpha()))


def mask_argv(argv: list[str], secret_opts=()) -> list[str]:
    """``argv`` with secrets masked.

    Without ``secret_opts``: ``--api-key VALUE``, ``--api-key=VALUE``,
    ``-api_key VALUE`` (absl's and fire's single dash), ``API_KEY=VALUE`` and
    abbreviations of the built-in words (``--api VALUE``, ``--pass=VALUE``, at
    least 3 characters). With ``secret_opts`` (from
    ``secret_options(parser)``) also every spelling argparse accepts for them:
    ``-p VALUE``, ``-p=VALUE``, ``-pVALUE``, ``-vpVALUE``, ``--db-pass VALUE``.
    Every word's URL credentials are masked (``mask_text``). A ``--`` does not
    stop the masking: what follows is often handed to another program.
    """
    opts = set(secret_opts)
    shorts = {o for o in opts if len(o) == 2 and _dashes(o) == 1}
    longs = [o for o in opts if len(o) > 2]
    out: list[str] = []
    hide_next = False
    for a in argv:
        if hide_next:
            hide_next = False
            if _is_value(a):
                out.append(MASK)
                continue
        shown, hide_next = _mask_word(a, opts, shorts, longs)
        out.append(shown)
    return out


def _mask_word(a: str, opts: set, shorts: set, longs: list[str]) -> tuple[str, bool]:
    """One word, masked; and whether the next word is its (secret) value."""
    key, eq, _ = a.partition("=")
    if eq:
        if (key in opts or _abbreviates(key, longs)
                or (is_secret(key.lstrip("-")) and (key.startswith("-") or key.isidentifier()))):
            return f"{key}={MASK}", False
    elif a in opts or _abbreviates(a, longs) or (_dashes(a) and is_secret(a.lstrip("-"))):
        return a, True  # a single dash too: absl and fire take -db_password VALUE
    if shorts and len(a) > 2 and _dashes(a) == 1:
        for j in range(1, len(a)):  # -pVALUE, and -vpVALUE after flags
            if a[0] + a[j] in shorts:
                return (a[:j + 1] + MASK, False) if j + 1 < len(a) else (a, True)
            if not a[j].isalpha():
                break
    return mask_text(a), False


def hide_short_values(argv: list[str]) -> list[str]:
    """Every short option's value hidden (``-p VALUE``, ``-pVALUE``): what is written
    before the parser tells which short options hold secrets. Python's own options
    (``python -W error -u train.py``) and the script's name are not the script's options."""
    n = _interpreter_words(argv)
    out = argv[:n]
    hide = False
    for a in argv[n:]:
        if hide and not a.startswith("-"):
            out.append(MASK)
            hide = False
            continue
        hide = False
        if len(a) >= 2 and a[0] == "-" and a[1] != "-" and a[1].isalpha():
            if len(a) == 2:
                hide = True
            else:
                a = a[:2] + MASK
        out.append(a)
    return out


_PY_VALUE_OPTS = ("-W", "-X", "--check-hash-based-pycs")


def _interpreter_words(argv: list[str]) -> int:
    """How many leading words are Python, its options and what it runs (the script, ``-m
    MODULE``, ``-c CODE``): ``python -X dev -u train.py --lr 1`` → 5. Any other program: 1."""
    if not argv or not os.path.basename(argv[0]).lower().startswith(("python", "pypy")):
        return 1
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in _PY_VALUE_OPTS:
            i += 2
        elif a in ("-c", "-m"):
            return min(i + 2, len(argv))
        elif a.startswith("-") and len(a) > 1 and a != "--":
            i += 1  # -u, -O, -I, -Werror, -Xdev
        else:
            return i + 1  # the script (or "-" for stdin)
    return min(i, len(argv))
