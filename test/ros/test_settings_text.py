"""The params file and the README table are the parameter table's text, regenerated, not edited."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pixio_ros.ros.settings import PARAMETER_NAMES, PARAMETERS
from pixio_ros.ros.settings_text import (
    LINE_LENGTH,
    README_BEGIN,
    README_END,
    params_file_text,
    readme_table,
    replace_readme_table,
)

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r'^\| `(?P<name>[^`]+)` \| `(?P<default>[^`]*)` \| (?P<live>[^|]+) \| ')


def test_committed_params_file_is_the_generated_one():
    assert (REPO / 'config' / 'pixio.yaml').read_text() == params_file_text(), (
        'config/pixio.yaml differs from the parameter table; run `make settings-text`'
    )


def test_committed_readme_table_is_the_generated_one():
    readme = (REPO / 'README.md').read_text()
    assert replace_readme_table(readme, readme_table()) == readme, (
        "README.md's parameter table differs from the parameter table; run `make settings-text`"
    )


def test_readme_rows_name_every_parameter_in_order_with_its_liveness():
    readme = (REPO / 'README.md').read_text()
    table = readme[readme.index(README_BEGIN) : readme.index(README_END)]
    rows = [match for line in table.splitlines() if (match := ROW.match(line))]
    assert [row['name'] for row in rows] == list(PARAMETER_NAMES)
    for row, spec in zip(rows, PARAMETERS, strict=True):
        assert row['live'] == ('no (read-only)' if spec.read_only else 'yes'), spec.name
        assert yaml.safe_load(row['default']) == spec.default, spec.name


def test_params_file_comments_hold_every_description_within_the_line_length():
    text = params_file_text()
    assert max(len(line) for line in text.splitlines()) <= LINE_LENGTH
    comments = ' '.join(
        line.strip()[2:] for line in text.splitlines() if line.strip().startswith('# ')
    )
    for spec in PARAMETERS:
        assert spec.description in comments, spec.name


def test_a_readme_without_markers_is_refused_with_the_fix():
    with pytest.raises(ValueError, match='no parameter table markers'):
        replace_readme_table('# a README\n', readme_table())


def test_check_mode_names_the_stale_file_and_fails(tmp_path):
    (tmp_path / 'config').mkdir()
    (tmp_path / 'config' / 'pixio.yaml').write_text(params_file_text() + '# edited by hand\n')
    (tmp_path / 'README.md').write_text(f'# r\n\n{readme_table()}\nmore\n')
    command = [sys.executable, '-m', 'pixio_ros.ros.settings_text', str(tmp_path), '--check']
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f'{tmp_path / "config" / "pixio.yaml"} differs from the parameter table; '
        'run `make settings-text`'
    )
    subprocess.run(command[:-1], capture_output=True, check=True)
    assert subprocess.run(command, capture_output=True, check=False).returncode == 0
    assert (tmp_path / 'config' / 'pixio.yaml').read_text() == params_file_text()
