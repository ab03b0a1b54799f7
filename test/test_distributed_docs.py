"""Every command in docs/distributed.md parses: pixio-ros's options and torchrun's own."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest
from torch.distributed.run import get_args_parser

from pixio_ros.cli import build_parser

DOC = Path(__file__).resolve().parents[1] / 'docs' / 'distributed.md'
CODE_INDENT = '    '
COMMAND = 'PIXIO_ROS'
SPELLINGS = ('"$(which pixio-ros)"', '$(which pixio-ros)')


def doc_commands() -> list[str]:
    """The doc's indented command lines with `torchrun` or `pixio-ros`, continuations joined."""
    commands, current = [], ''
    for line in DOC.read_text(encoding='utf-8').splitlines():
        if not line.startswith(CODE_INDENT):
            current = ''
            continue
        text = line.strip()
        joined = f'{current} {text}' if current else text
        if text.endswith('\\'):
            current = joined[:-1].strip()
            continue
        current = ''
        words = joined.split()
        if 'torchrun' in words or words[0] == 'pixio-ros':
            commands.append(joined)
    return commands


def split(command: str) -> tuple[list[str] | None, list[str]]:
    """(torchrun's arguments or None, pixio-ros's arguments) of one command line."""
    for spelling in SPELLINGS:
        command = command.replace(spelling, COMMAND)
    words = shlex.split(command)
    if words[0] == 'pixio-ros':
        return None, words[1:]
    start = words.index('torchrun') + 1
    end = words.index(COMMAND)
    return words[start:end], words[end + 1 :]


def test_the_doc_has_the_commands_it_promises():
    commands = doc_commands()
    launched = [command for command in commands if 'torchrun' in command.split()]
    assert len(launched) == 8  # one node, two nodes, SLURM; NYUv2, KITTI train + eval; features
    assert any('--rdzv-endpoint' in command for command in launched)
    assert any(command.startswith('srun torchrun') for command in launched)
    names = {split(command)[1][0] for command in commands}
    assert names == {'train-head', 'eval', 'export', 'features'}


def assert_spelled_out(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """Each option named in full (argparse would also accept a prefix of it)."""
    for word in words:
        if word.startswith('--'):
            assert word.split('=')[0] in parser._option_string_actions, word


def subcommand_parser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[name]


@pytest.mark.parametrize('command', doc_commands())
def test_every_command_parses(command):
    torchrun, argv = split(command)
    if torchrun is not None:
        launcher = get_args_parser()
        launcher.parse_args([*torchrun, 'pixio-ros', *argv])
        assert_spelled_out(launcher, torchrun)
    build_parser().parse_args(argv)
    assert_spelled_out(subcommand_parser(argv[0]), argv[1:])
