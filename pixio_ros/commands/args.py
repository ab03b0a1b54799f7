"""Argument helpers shared by the `pixio-ros` commands, so every command reads a value alike."""

from __future__ import annotations

import argparse

__all__ = ['HXW_HELP', 'parse_hxw']

HXW_SEPARATOR = 'x'
HXW_HELP = 'HEIGHTxWIDTH in pixels, height first (e.g. 480x640); one number N means NxN'
"""Help text fragment for every HxW option (the same words in every command)."""
_SIDES = 2


def parse_hxw(text: str) -> tuple[int, int]:
    """'480x640' -> (480, 640); '256' -> (256, 256). The one HxW parser of the CLI.

    Height first, as everywhere in this package (numpy's and torch's order). A single number
    means a square, because crops and input sizes are often square and every command must
    accept the same spellings.

    Raises:
        argparse.ArgumentTypeError: Not one or two positive integers joined by 'x' (argparse
            turns this into a one-line usage error naming the option).
    """
    parts = text.strip().lower().split(HXW_SEPARATOR)
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        sides = []
    if len(sides) == 1:
        sides = sides * _SIDES
    if len(sides) != _SIDES or min(sides) <= 0:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not HEIGHTxWIDTH (e.g. 480x640) or N for NxN, in positive pixels'
        )
    return sides[0], sides[1]
