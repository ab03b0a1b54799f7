"""Launch-argument parsing for launch/pixio.launch.py, kept pure so it is tested without launch.

Launch arguments arrive as strings; `compressed:=yes` used to turn silently into false. The launch
file is thin and calls these functions, which either return a typed value or refuse the text.
"""

from __future__ import annotations

from typing import Final

__all__ = ['FALSE_WORDS', 'TRUE_WORDS', 'parse_bool_argument']

TRUE_WORDS: Final = frozenset({'true', '1', 'yes'})
FALSE_WORDS: Final = frozenset({'false', '0', 'no'})


def parse_bool_argument(name: str, value: str) -> bool | None:
    """A boolean launch argument: true/false, 1/0, yes/no in any case; '' means "not given".

    Args:
        name: the argument's name, for the error message.
        value: the argument's text as launch resolved it.

    Returns:
        True or False, or None for an empty value (the params file's value stays in force).

    Raises:
        ValueError: any other text, naming the argument, the value and the accepted words.
    """
    text = value.strip().lower()
    if not text:
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(
        f'launch argument {name}:={value!r} is not a boolean; use true/false, 1/0 or yes/no '
        "(any case), or leave it out to keep params_file's value."
    )
