"""Every command and option of ``aioamp`` explains itself: a help text, and its default where
it has one; the exit statuses are in ``aioamp --help``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from aioamp.cli import HelpFormatter, build_parser, main


def _commands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[argparse.ArgumentParser, str, str | None]]:
    """(parser, name, help) of every command and sub-command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield child, name, helps.get(name)
                yield from _commands(child)


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        hidden = action.help == argparse.SUPPRESS
        if not hidden and not isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            yield action


PARSER = build_parser()
COMMANDS = list(_commands(PARSER))


def test_every_command_is_found() -> None:
    names = {child.prog for child, _, _ in COMMANDS}
    assert {"aioamp demo", "aioamp ping", "aioamp echo", "aioamp bench"} <= names
    assert {"aioamp fw inspect", "aioamp fw build-sample", "aioamp doctor"} <= names


@pytest.mark.parametrize(("parser", "name", "text"), COMMANDS, ids=[c[0].prog for c in COMMANDS])
def test_every_command_and_option_has_help_with_its_default(
    parser: argparse.ArgumentParser, name: str, text: str | None
) -> None:
    assert text, f"{parser.prog} has no help line in its parent's list"
    formatter = HelpFormatter(parser.prog)
    for action in _options(parser):
        assert action.help, f"{parser.prog} {action.option_strings or action.dest}: no help"
        shown = formatter._get_help_string(action)
        has_default = action.default not in (None, False, argparse.SUPPRESS)
        if action.option_strings and has_default and action.nargs != 0:
            assert "default" in shown, f"{parser.prog} {action.option_strings}: no default"
    assert parser.formatter_class is HelpFormatter


def test_help_shows_defaults_and_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ping", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "(default: 100)" in out and "(default: 16 64 496)" in out
    assert "(default: 30.0)" in out and "logging (to stderr)" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for line in ("0    ok", "1    failed", "2    usage error", "3    the peer or the transport"):
        assert line in out


def test_logging_options_work_before_and_after_the_command() -> None:
    args = PARSER.parse_args(["-v", "fw", "inspect", "x.elf"])
    assert (args.verbose, args.quiet, args.log_json) == (1, 0, False)
    args = PARSER.parse_args(["fw", "inspect", "x.elf", "-vv", "--log-json"])
    assert (args.verbose, args.log_json, args.command_prog) == (2, True, "aioamp fw inspect")
    args = PARSER.parse_args(["-q", "demo", "--log-level", "debug"])
    assert (args.quiet, args.log_level) == (1, "DEBUG")
