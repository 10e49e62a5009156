"""args/given.py: which arguments were given on the command line, from argv."""

from __future__ import annotations

import argparse

from runlog.args.given import given_from_argv, namespace_args


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--lr-decay", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("-b", "--batch-size", type=int, default=32)
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("data")
    p.add_argument("out", nargs="?", default="out")
    return p


def given(p, argv) -> list[str]:
    ns = p.parse_args(argv)  # what the script parsed: the values tell a positional's defaults
    return sorted(given_from_argv(list(namespace_args(ns)), argv, p, namespace_args(ns)))


def test_options_exact_glued_and_with_equals():
    p = parser()
    assert given(p, ["d", "--lr=0.2", "-b64"]) == ["batch_size", "data", "lr"]
    assert given(p, ["d", "--batch-size", "8", "-vv"]) == ["batch_size", "data", "verbose"]


def test_abbreviations_as_argparse_allows_them():
    p = parser()
    assert given(p, ["d", "--epo", "5"]) == ["data", "epochs"]
    assert given(p, ["d", "--lr-d", "0.5"]) == ["data", "lr_decay"]
    assert given(p, ["d", "--lr", "0.5"]) == ["data", "lr"]  # exact beats the longer --lr-decay
    strict = argparse.ArgumentParser(allow_abbrev=False)
    strict.add_argument("--epochs", type=int, default=3)
    assert given_from_argv(["epochs"], ["--epo", "5"], strict) == []


def test_positionals_given_when_required_or_not_the_default():
    p = parser()
    assert given(p, ["d"]) == ["data"]
    assert given(p, ["d", "elsewhere"]) == ["data", "out"]
    assert given(p, ["d", "out"]) == ["data"]  # typed, but the default: nothing to tell


def test_subcommands_options_after_the_subcommand():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    sub = p.add_subparsers(dest="cmd")
    train = sub.add_parser("train")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--seed-data", type=int, default=0)
    sub.add_parser("eval").add_argument("--split", default="val")
    assert given(p, ["--seed", "1", "train", "--epo", "5"]) == ["cmd", "epochs", "seed"]
    assert given(p, ["train", "--seed-data", "2"]) == ["cmd", "seed_data"]
    assert given(p, ["eval"]) == ["cmd"]


def test_a_value_after_double_dash_is_not_an_option():
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("rest", nargs="*")
    assert given_from_argv(["lr", "rest"], ["--", "--lr"], p, {"rest": ["--lr"], "lr": 0.1}) \
        == ["rest"]


def test_without_a_parser_long_options_by_name():
    keys = ["lr", "batch_size", "epochs", "data"]
    assert given_from_argv(keys, ["--lr=0.1", "--batch-size", "3", "-e", "5", "data"]) == \
        ["lr", "batch_size"]
    assert given_from_argv(keys, ["--", "--epochs", "3"]) == []
    assert given_from_argv(keys, ["--epo", "3"]) == []  # no parser: no abbreviations to trust
