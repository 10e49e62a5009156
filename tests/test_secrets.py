"""Secrets stay out of everything runlog writes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import pytest

from runlog.mask import MASK, is_secret, mask_args, mask_argv, mask_text, secret_options

SCRIPT = """\
import argparse, runlog
p = argparse.ArgumentParser()
p.add_argument("--api-key")
p.add_argument("--db-password")
p.add_argument("--hf-token")
p.add_argument("--wandb-project")
p.add_argument("--lr", type=float, default=0.1)
runlog.start(git=False)
args = p.parse_args()
print("used", args.api_key[:2])
"""


def test_masked_in_record_command_report_and_log(tmp_path):
    (tmp_path / "s.py").write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, RUNLOG_MASK="project")
    env.pop("RUNLOG_DIR", None)
    p = subprocess.run(
        [sys.executable, "s.py", "--api-key", "sk-SECRET1", "--db-password=SECRET2",
         "--hf-token", "SECRET3", "--wandb-project", "SECRET4", "--lr", "0.5"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "used sk" in p.stdout  # the script itself still gets the real values
    (d,) = [x for x in (tmp_path / "logs").iterdir() if x.is_dir() and not x.name.startswith(".")]
    everything = "".join(f.read_text() for f in d.iterdir()) + p.stderr
    everything += (tmp_path / "logs" / ".runlog-index.jsonl").read_text()
    for secret in ("SECRET1", "SECRET2", "SECRET3", "SECRET4"):
        assert secret not in everything
    r = json.loads((d / "run.json").read_text())
    assert r["args"]["api_key"] == "***" and r["args"]["lr"] == 0.5
    assert "--api-key '***'" in r["command_line"] or "--api-key ***" in r["command_line"]
    assert "--db-password=***" in r["command_line"]


def test_mask_argv_forms():
    assert mask_argv(["--api-key", "x", "--lr", "1", "--token=abc", "ACCESS_KEY=zz", "-p", "q"]) == [
        "--api-key", "***", "--lr", "1", "--token=***", "ACCESS_KEY=***", "-p", "q"]


def test_mask_argv_a_single_dash_secret_name_hides_its_value():
    # absl and fire take -name as well as --name
    assert mask_argv(["-db_password", "x", "-lr", "1", "-api_key=y"]) == [
        "-db_password", "***", "-lr", "1", "-api_key=***"]


def test_mask_args_nested_and_empty_values_left():
    assert mask_args({"db": {"password": "p", "host": "h"}, "token": None, "secret_sauce": ""}) == {
        "db": {"password": "***", "host": "h"}, "token": None, "secret_sauce": ""}


def test_patch_with_a_key_warns(tmp_path):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    env.pop("RUNLOG_DIR", None)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "s.py").write_text("import runlog\nrunlog.start()\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "config.py").write_text('API_KEY = "sk-live-abcdef123456"\n')
    p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 0
    assert p.stderr.count("seems to hold a credential") == 1



# ---------------------------------------------------------------- end to end: every spelling

E2E_SCRIPT = """\\
import argparse, runlog
p = argparse.ArgumentParser()
p.add_argument("--api-key")
p.add_argument("-p", "--passwd")
p.add_argument("--db")
p.add_argument("--lr", type=float, default=0.1)
{before}
args = p.parse_args()
{after}
assert (args.api_key, args.passwd, args.db) == (
    "sk-AAAA1111", "HUNTER22", "postgres://u:PGPASS99@h/db"), "the script gets the real values"
run.log_metrics({{"loss": 0.5}}, step=0)
print("trained", args.lr)
"""
E2E_SECRETS = (b"sk-AAAA1111", b"HUNTER22", b"PGPASS99")
E2E_ARGV = ["s.py", "--api", "sk-AAAA1111", "-pHUNTER22", "--db", "postgres://u:PGPASS99@h/db"]


@pytest.mark.parametrize("start", ["before the parse", "after the parse"])
@pytest.mark.parametrize("how", ["python s.py", "runlog run -- python s.py"])
def test_no_spelling_of_a_secret_is_written_anywhere(tmp_path, how, start):
    """An abbreviation (--api), a short alias glued to its value (-pHUNTER22) and a URL's
    password: none of them in any byte under the log directory, nor in what runlog says."""
    from conftest import clean_env

    code = "run = runlog.start(git=False)"
    (tmp_path / "s.py").write_text(E2E_SCRIPT.format(
        before=code if start == "before the parse" else "",
        after=code if start == "after the parse" else ""))
    logs = tmp_path / "runlogs"
    cmd = [sys.executable, *E2E_ARGV]
    if how.startswith("runlog run"):
        cmd = [sys.executable, "-m", "runlog", "run", "--", *cmd]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, env=clean_env(RUNLOG_DIR=str(logs)),
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert b"trained 0.1" in p.stdout
    files = [f for f in logs.rglob("*") if f.is_file()]
    names = {f.name for f in files}
    assert {"run.json", "run.log", ".runlog-index.jsonl"} <= names, names
    everything = {str(f.relative_to(logs)): f.read_bytes() for f in files}
    everything["stdout"], everything["stderr"] = p.stdout, p.stderr
    assert any(b"s.py" in data for data in everything.values())  # the command was written
    leaks = {(name, s.decode()) for name, data in everything.items() for s in E2E_SECRETS
             if s in data}
    assert not leaks, sorted(leaks)

# the same, for the argument libraries other than argparse: each script gets the three
# secrets in its library's spellings and checks it got the real values
LIBRARY_SCRIPTS = {
    "absl": ("absl", """\
from absl import app, flags
import runlog
flags.DEFINE_string("api_key", None, "")
flags.DEFINE_string("db_password", None, "", short_name="p")
flags.DEFINE_string("db", None, "")
flags.DEFINE_float("lr", 0.1, "")
FLAGS = flags.FLAGS
{before}
def main(argv):
    {inside}
    assert (FLAGS.api_key, FLAGS.db_password, FLAGS.db) == (
        "sk-AAAA1111", "HUNTER22", "postgres://u:PGPASS99@h/db")
    runlog.metric("loss", 0.5)
    print("trained", FLAGS.lr)
app.run(main)
""", ["--api_key=sk-AAAA1111", "-db_password", "HUNTER22", "--db", "postgres://u:PGPASS99@h/db"]),
    "jsonargparse": ("jsonargparse", """\
import jsonargparse, runlog
{before}
p = jsonargparse.ArgumentParser()
p.add_argument("--api_key")
p.add_argument("--db.password")
p.add_argument("--db.url")
p.add_argument("--lr", type=float, default=0.1)
cfg = p.parse_args()
def main():
    {inside}
    assert (cfg.api_key, cfg.db.password, cfg.db.url) == (
        "sk-AAAA1111", "HUNTER22", "postgres://u:PGPASS99@h/db")
    runlog.metric("loss", 0.5)
    print("trained", cfg.lr)
main()
""", ["--api_key", "sk-AAAA1111", "--db.password=HUNTER22", "--db.url",
      "postgres://u:PGPASS99@h/db"]),
    "fire": ("fire", """\
import fire, runlog
{before}
def main(api_key=None, password=None, db=None, lr=0.1):
    {inside}
    assert (api_key, password, db) == ("sk-AAAA1111", "HUNTER22", "postgres://u:PGPASS99@h/db")
    runlog.metric("loss", 0.5)
    print("trained", lr)
fire.Fire(main)
""", ["--api-key", "sk-AAAA1111", "-password", "HUNTER22", "--db=postgres://u:PGPASS99@h/db"]),
}


@pytest.mark.parametrize("start", ["first", "in main"])
@pytest.mark.parametrize("how", ["python s.py", "runlog run -- python s.py"])
@pytest.mark.parametrize("library", sorted(LIBRARY_SCRIPTS))
def test_no_spelling_of_a_secret_is_written_anywhere_with_other_libraries(tmp_path, library,
                                                                         how, start):
    """absl's single-dash -db_password, jsonargparse's nested --db.password=, fire's -password:
    none of the secrets in any byte under the log directory, nor in what runlog says."""
    from conftest import clean_env

    module, script, argv = LIBRARY_SCRIPTS[library]
    pytest.importorskip(module)
    code = "runlog.start(git=False)"
    (tmp_path / "s.py").write_text(script.format(before=code if start == "first" else "",
                                                 inside=code if start == "in main" else "pass"))
    logs = tmp_path / "runlogs"
    cmd = [sys.executable, "s.py", *argv]
    if how.startswith("runlog run"):
        cmd = [sys.executable, "-m", "runlog", "run", "--", *cmd]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, env=clean_env(RUNLOG_DIR=str(logs)),
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert b"trained 0.1" in p.stdout
    everything = {str(f.relative_to(logs)): f.read_bytes() for f in logs.rglob("*") if f.is_file()}
    everything["stdout"], everything["stderr"] = p.stdout, p.stderr
    leaks = {(name, s.decode()) for name, data in everything.items() for s in E2E_SECRETS
             if s in data}
    assert not leaks, sorted(leaks)
    (run_json,) = [f for f in logs.glob("*/run.json")]
    args = json.loads(run_json.read_text())["args"]
    assert "***" in json.dumps(args) and args.get("lr") == 0.1, args


# ---------------------------------------------------------------- the parser's secret options


def parser() -> argparse.ArgumentParser:
    """A training script's parser: secrets by option name, by dest only, behind short
    aliases and in subcommands, among options and flags that are not secrets."""
    p = argparse.ArgumentParser()
    p.add_argument("--api-key")
    p.add_argument("-p", "--passwd")
    p.add_argument("--db-password")
    p.add_argument("-k", dest="hf_token")  # only the dest says it is a secret
    p.add_argument("--db")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("-o", "--out")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("--save-token", action="store_true")  # a flag: no value to hide
    sub = p.add_subparsers(dest="cmd")
    push = sub.add_parser("push")
    push.add_argument("-P", "--push-secret")
    push.add_argument("--repo")
    nested = push.add_subparsers(dest="where").add_parser("hub")
    nested.add_argument("--hub-credential")
    sub.add_parser("train").add_argument("--epochs", type=int)
    return p


OPTS = secret_options(parser())


def test_secret_options_are_every_spelling_of_the_secret_valued_options():
    assert OPTS == ["--api-key", "-p", "--passwd", "--db-password", "-k", "-P",
                    "--push-secret", "--hub-credential"]


def test_secret_options_of_a_parser_without_secrets_or_options():
    p = argparse.ArgumentParser(prefix_chars="-+")
    p.add_argument("--lr")
    p.add_argument("+t", "++tok", dest="token")
    p.add_argument("files", nargs="*")
    assert secret_options(p) == ["+t", "++tok"]
    assert secret_options(argparse.ArgumentParser()) == []


# every spelling argparse accepts: (argv, what the record shows)
SPELLINGS = [
    (["--api-key", "x"], ["--api-key", MASK]),
    (["--api-key=x"], ["--api-key=" + MASK]),
    (["--api", "x"], ["--api", MASK]),  # an abbreviation
    (["--api=x"], ["--api=" + MASK]),
    (["--api-k", "x"], ["--api-k", MASK]),
    (["-p", "x"], ["-p", MASK]),  # a short alias
    (["-px"], ["-p" + MASK]),  # glued to its value
    (["-p=x"], ["-p=" + MASK]),
    (["-vpx"], ["-vp" + MASK]),  # after a flag
    (["-vp", "x"], ["-vp", MASK]),
    (["--passwd", "x"], ["--passwd", MASK]),
    (["--passwd=x"], ["--passwd=" + MASK]),
    (["--pass", "x"], ["--pass", MASK]),
    (["--pass=x"], ["--pass=" + MASK]),
    (["--db-password", "x"], ["--db-password", MASK]),
    (["--db-pass", "x"], ["--db-pass", MASK]),  # an abbreviation only the parser knows
    (["--db-pass=x"], ["--db-pass=" + MASK]),
    (["-k", "x"], ["-k", MASK]),
    (["-kx"], ["-k" + MASK]),
    (["push", "-P", "x"], ["push", "-P", MASK]),  # a subcommand's options
    (["push", "-Px"], ["push", "-P" + MASK]),
    (["push", "--push-s=x"], ["push", "--push-s=" + MASK]),
    (["push", "hub", "--hub-cred", "x"], ["push", "hub", "--hub-cred", MASK]),
    (["--db", "postgres://u:x@h/db"], ["--db", f"postgres://u:{MASK}@h/db"]),  # by shape
    (["--db=postgres://u:x@h/db"], [f"--db=postgres://u:{MASK}@h/db"]),
]


@pytest.mark.parametrize("argv, shown", SPELLINGS, ids=[" ".join(a) for a, _ in SPELLINGS])
def test_every_spelling_of_a_secret_option_is_masked(argv, shown):
    assert mask_argv(argv, OPTS) == shown


@pytest.mark.parametrize("argv", [a for a, _ in SPELLINGS], ids=[" ".join(a) for a, _ in SPELLINGS])
def test_what_argparse_reads_as_a_secret_never_shows(argv):
    """The parser itself says which value it took for a secret ("x"): that value is gone."""
    ns = vars(parser().parse_args(argv))
    assert "x" in [v for k, v in ns.items() if is_secret(k)] or "u:x@" in (ns["db"] or "")
    assert [w for w in mask_argv(argv, OPTS) if "x" in w.replace(MASK, "")] == []


def test_without_the_parser_long_names_and_abbreviations_of_the_words_are_masked():
    argv = ["--api", "a", "--pass=b", "--hf-token", "c", "--tok", "d", "TOKEN=e", "-p", "f",
            "-pg", "--db-pass", "h"]
    assert mask_argv(argv) == ["--api", MASK, "--pass=" + MASK, "--hf-token", MASK, "--tok", MASK,
                               "TOKEN=" + MASK, "-p", "f", "-pg", "--db-pass", "h"]


def test_abbreviations_are_at_least_three_characters():
    assert mask_argv(["--ap", "a", "--pa=b", "--to", "c"], ["--api-key", "--password"]) == [
        "--ap", "a", "--pa=b", "--to", "c"]


def test_runlog_mask_words_are_abbreviated_too(monkeypatch):
    monkeypatch.setenv("RUNLOG_MASK", "project")
    assert mask_argv(["--proj", "x", "--wandb-project=y"]) == ["--proj", MASK, "--wandb-project=" + MASK]


def test_what_is_not_a_secret_is_left_as_typed():
    argv = ["python", "-u", "train.py", "--lr", "0.1", "-v", "-o/tmp/pp", "-j4", "--epochs=3",
            "--db", "postgres://h/db", "--url", "http://host:8080/x", "--to", "user@host",
            "--save-token", "--lr", "1", "a:b", "LR=1", "-", "--"]
    assert mask_argv(argv) == argv
    assert mask_argv(argv, OPTS) == argv


def test_a_secret_option_before_another_option_hides_nothing():
    # argparse would not take --lr as the key's value (it stops with an error)
    assert mask_argv(["--api-key", "--lr", "1"], OPTS) == ["--api-key", "--lr", "1"]
    assert mask_argv(["-p", "--", "x"], OPTS) == ["-p", "--", "x"]
    # a value that starts with one dash may be a value (a negative number, a token)
    assert mask_argv(["--api-key", "-x1"], OPTS) == ["--api-key", MASK]


def test_masking_goes_on_after_a_double_dash():
    # `runlog run -- python s.py …` and launchers (torchrun, accelerate) hand on what follows
    argv = ["runlog", "run", "--", "python", "s.py", "--api-key", "a", "-pb", "--pass", "c",
            "--", "--db", "mysql://u:d@h", "-k", "e"]
    assert mask_argv(argv, OPTS) == [
        "runlog", "run", "--", "python", "s.py", "--api-key", MASK, "-p" + MASK, "--pass", MASK,
        "--", "--db", f"mysql://u:{MASK}@h", "-k", MASK]


def test_urls_in_any_word_are_masked_whatever_the_option():
    argv = ["--data", "s3://AKIA:se/cr+et@bucket/x", "DB=postgres://u:p@h", "positional",
            "https://user:tok@host/x", "--", "redis://:pw@h:6379/0"]
    assert mask_argv(argv) == [
        "--data", f"s3://AKIA:{MASK}@bucket/x", f"DB=postgres://u:{MASK}@h", "positional",
        f"https://user:{MASK}@host/x", "--", f"redis://:{MASK}@h:6379/0"]


# ---------------------------------------------------------------- free text

URLS = [
    ("postgres://user:PASS@host/db", f"postgres://user:{MASK}@host/db"),
    ("https://user:token@host/x", f"https://user:{MASK}@host/x"),
    ("redis://:pw@h:6379/0", f"redis://:{MASK}@h:6379/0"),
    ("mysql+pymysql://u:p@ss@h/d", f"mysql+pymysql://u:{MASK}@h/d"),  # an @ in the password
    ("s3://AKIA:ab/cd+ef@bucket/key", f"s3://AKIA:{MASK}@bucket/key"),  # a / in the password
    ("mongodb://u:p'q@h", f"mongodb://u:{MASK}@h"),
    ("https://ghp_abcdefghij1234567890@github.com/o/r", f"https://{MASK}@github.com/o/r"),
    ("https://h/x?access_token=abc&n=1", f"https://h/x?access_token={MASK}&n=1"),
    ("jdbc:sqlserver://h;user=u;password=p", f"jdbc:sqlserver://h;user=u;password={MASK}"),
    ("https://h/r?next=https://u:p@h2/", f"https://h/r?next=https://u:{MASK}@h2/"),
    ("connect to 'postgres://u:p@h/db' then http://a:b@c.",
     f"connect to 'postgres://u:{MASK}@h/db' then http://a:{MASK}@c."),
    ('{"url": "amqp://guest:guest@rabbit:5672/", "x": "u@x"}',
     f'{{"url": "amqp://guest:{MASK}@rabbit:5672/", "x": "u@x"}}'),
]
NOT_CREDENTIALS = [
    "http://host:8080/x", "user@host", "a:b", "a:b@c", "http://host:8080/users/bob@example.com",
    "ssh://git@github.com/o/r", "https://alice@host/x", "git+ssh://git@github.com:org/repo.git@v1.0", "http://u:@h",
    "http://[::1]:8080/x@y", '{"a": "http://host:8080", "b": "u@x"}', "https://h/x?page=2&n=1",
    "file:///tmp/x", "see https://example.com/a:b", "", "no url here: u:p@h",
]


@pytest.mark.parametrize("text, masked", URLS, ids=[u for u, _ in URLS])
def test_mask_text_masks_url_credentials(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", NOT_CREDENTIALS)
def test_mask_text_leaves_what_is_not_a_credential(text):
    assert mask_text(text) == text


def test_mask_text_passes_non_strings_through():
    assert mask_text(None) is None and mask_text(3) == 3


# ---------------------------------------------------------------- argument mappings


def test_mask_args_masks_urls_in_every_string_value():
    args = {"db": "postgres://u:p@h/db", "lr": 0.1, "cfg": {"urls": ["https://a:b@c", "http://c:80"],
            "pair": ("mysql://u:q@h", 1), "name": "run"}, "model": "bert"}
    assert mask_args(args) == {
        "db": f"postgres://u:{MASK}@h/db", "lr": 0.1, "cfg": {
            "urls": [f"https://a:{MASK}@c", "http://c:80"], "pair": (f"mysql://u:{MASK}@h", 1),
            "name": "run"}, "model": "bert"}


def test_mask_args_masks_secret_names_at_any_depth():
    args = {"train": {"hub": {"hf_token": "x", "repo": "r"}, "keys": [{"api_key": "y"}]},
            "password": ["a", "b"], "secret": 0, "token": False}
    assert mask_args(args) == {"train": {"hub": {"hf_token": MASK, "repo": "r"},
                                         "keys": [{"api_key": MASK}]},
                               "password": MASK, "secret": 0, "token": False}


def test_masking_imports_re_only_for_a_url(tmp_path):
    """mask_argv runs inside start(): no regular expression until a word holds ://."""
    code = """\
import sys
import runlog.mask as m
m.mask_argv(['python', 's.py', '--api-key', 'x', '-px', '--db', 'h'], ['-p'])
m.mask_args({'a': 'b', 'token': 'x', 'n': [1, 'y']})
before = 're' in sys.modules
m.mask_text('http://u:p@h')
print(before, 're' in sys.modules)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=root), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True"]


ML_NAMES = ["max_tokens", "tokenizer", "pad_token_id", "bos_token", "eos_token", "num_tokens",
            "token_dropout", "max_new_tokens", "tokenizer_name", "tokens_per_batch"]
CREDENTIAL_NAMES = ["token", "HF_TOKEN", "hf_token", "hf-token", "accessToken", "GITHUB_TOKEN",
                    "wandb_api_key", "OPENAI_API_KEY", "db_password", "client_secret",
                    "aws_secret_access_key", "private_key", "ssh_passphrase"]


@pytest.mark.parametrize("name", ML_NAMES)
def test_model_settings_named_after_tokens_are_not_secrets(name):
    assert not is_secret(name)


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_credential_names_are_secrets(name):
    assert is_secret(name)


def test_a_language_model_run_keeps_its_token_settings_and_hides_its_token(tmp_path):
    (tmp_path / "lm.py").write_text(textwrap.dedent("""\
        import argparse, runlog
        p = argparse.ArgumentParser()
        p.add_argument("--max-tokens", type=int, default=256)
        p.add_argument("--tokenizer", default="gpt2")
        p.add_argument("--pad-token-id", type=int, default=0)
        p.add_argument("--hf-token")
        runlog.start(git=False)
        p.parse_args()
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOG_")}
    p = subprocess.run([sys.executable, "lm.py", "--max-tokens", "512", "--tokenizer", "llama",
                        "--hf-token", "hf_SECRETVALUE"],
                       cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    (d,) = [x for x in (tmp_path / "logs").iterdir() if x.is_dir() and not x.name.startswith(".")]
    r = json.loads((d / "run.json").read_text())
    assert r["args"]["max_tokens"] == 512 and r["args"]["tokenizer"] == "llama"
    assert r["args"]["pad_token_id"] == 0 and r["args"]["hf_token"] == MASK
    assert "--max-tokens 512" in r["command_line"]
    everything = "".join(f.read_text() for f in d.iterdir()) + p.stderr
    assert "SECRETVALUE" not in everything and "max_tokens=512" in (d / "report.md").read_text()
