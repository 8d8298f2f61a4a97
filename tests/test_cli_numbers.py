"""Every numeric command-line option is finite and bounded when parsed (rsa_bridge.app.argtypes)."""
from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsa_bridge.app.argtypes import MAX_SEED, count, real, seed


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "abc", "", "2.5", "-1", "100001"])
def test_count_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match="--bootstrap|whole number"):
        count("--bootstrap", maximum=100_000)(text)


@pytest.mark.parametrize("text, value", [("0", 0), ("1000", 1000), ("1e3", 1000), ("1_000", 1000), ("7.0", 7)])
def test_count_accepts(text, value):
    got = count("--bootstrap", maximum=100_000)(text)
    assert got == value and isinstance(got, int)


def test_real_open_ends_and_seed():
    level = real("--ci-level", 0, 1, open_ends=True)
    assert level("0.95") == 0.95
    for bad in ("0", "1", "7", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="between 0 and 1"):
            level(bad)
    assert seed()(str(MAX_SEED)) == MAX_SEED  # exact beyond 2**53
    with pytest.raises(argparse.ArgumentTypeError):
        seed()(str(MAX_SEED + 1))


def test_one_line_and_exit_2_on_the_command_line(capsys):
    from rsa_bridge.app.cli import OneLineParser

    parser = OneLineParser(prog="rsa-bridge x")
    parser.add_argument("--delta", type=real("--delta", 0, 0.5, open_ends=True))
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--delta", "nan"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "argument --delta: must be a number between 0 and 0.5" in err[0]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str), st.text(max_size=8)))
def test_property_finite_and_in_bounds_or_refused(text):
    """Whatever the text: a finite number inside the bounds comes back, or one ArgumentTypeError."""
    for kind in (count("--n", maximum=10**6), real("--x", -5.0, 5.0)):
        try:
            value = kind(text)
        except argparse.ArgumentTypeError:
            continue
        assert math.isfinite(value) and kind.minimum <= value <= kind.maximum
        assert not kind.whole or isinstance(value, int)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999", "x"])
def test_limit_variables_refuse_non_finite(monkeypatch, value):
    from stimuli.errors import StimulusError
    from stimuli.limits import ArchiveLimits, max_image_pixels, memory_budget

    for name, read in (("RSA_BRIDGE_MAX_IMAGE_PIXELS", max_image_pixels), ("RSA_BRIDGE_MAX_MEMORY", memory_budget),
                       ("RSA_BRIDGE_MAX_EXTRACT_FILES", ArchiveLimits.from_env)):
        monkeypatch.setenv(name, value)
        with pytest.raises(StimulusError, match=name):
            read()
        monkeypatch.delenv(name)


def _walk(parser, path=("rsa-bridge",)):
    """(path, action) of every argument of every sub-command, and (path, parser) of every sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from _walk(sub, path + (name,))
        else:
            yield path, action


def test_every_numeric_option_is_bounded_and_every_option_has_help():
    """The rule of rsa_bridge.app.argtypes holds for every sub-command, plugins included: no bare int/float type,
    a help text for every option, a description for every action."""
    from rsa_bridge.app.argtypes import NumberType
    from rsa_bridge.app.cli import build_parser

    bare, no_help, no_description, bounded = [], [], [], 0
    for path, item in _walk(build_parser()):
        if isinstance(item, argparse.ArgumentParser):
            if not item.description:
                no_description.append(" ".join(path))
            continue
        if isinstance(item, (argparse._HelpAction, argparse._VersionAction)):
            continue
        name = " ".join(path) + " " + (item.option_strings[0] if item.option_strings else item.dest)
        if item.type in (int, float):
            bare.append(name)
        bounded += isinstance(item.type, NumberType)
        if not item.help:
            no_help.append(name)
    assert bare == [], f"numeric options without bounds (use rsa_bridge.app.argtypes): {bare}"
    assert no_help == [], f"options without help: {no_help}"
    assert no_description == [], f"sub-commands without a description: {no_description}"
    assert bounded >= 60
