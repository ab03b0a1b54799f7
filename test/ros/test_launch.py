"""The launch file (launch / launch_ros are not installable here): syntax and its arguments."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from pixio_ros.ros.launch_arguments import parse_bool_argument
from pixio_ros.ros.params import PARAMETERS

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / 'launch' / 'pixio.launch.py'


def declared_arguments() -> list[str]:
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'DeclareLaunchArgument'
    ]


def test_launch_file_declares_the_documented_arguments():
    assert sorted(declared_arguments()) == sorted(
        [
            'model',
            'params_file',
            'namespace',
            'camera',
            'cameras',
            'compressed',
            'device',
            'lifecycle',
            'autostart',
            'policy',
            'rviz',
            'rviz_frame',
        ]
    )


def test_launch_file_points_fast_dds_at_the_shipped_profile_per_distro():
    """The variable names live in pixio_ros.ros.fastdds (tested there), not in the launch file."""
    text = LAUNCH_FILE.read_text()
    assert 'profile_variables(' in text and 'fastdds_shm.xml' in text
    assert 'FASTRTPS_DEFAULT_PROFILES_FILE' not in text


def flatten(tree: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def test_config_yaml_lists_every_parameter_with_its_default():
    config = yaml.safe_load((REPO / 'config' / 'pixio.yaml').read_text())
    values = flatten(config['/**']['ros__parameters'])
    assert values == {spec.name: spec.default for spec in PARAMETERS}


# --- boolean launch arguments: compressed:=yes must not turn silently into false ------------


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('true', True),
        ('True', True),
        ('TRUE', True),
        ('1', True),
        ('yes', True),
        ('Yes', True),
        ('false', False),
        ('False', False),
        ('0', False),
        ('no', False),
        ('NO', False),
        ('', None),
        ('  ', None),
    ],
)
def test_bool_argument_accepts_the_usual_words_in_any_case(text, expected):
    assert parse_bool_argument('compressed', text) is expected


@pytest.mark.parametrize('text', ['y', 'on', '2', 'ture', 'yes please'])
def test_bool_argument_refuses_anything_else_naming_argument_and_value(text):
    with pytest.raises(ValueError, match=rf"compressed:='{text}' is not a boolean; use true/false"):
        parse_bool_argument('compressed', text)


def test_launch_file_parses_compressed_with_the_tested_function():
    """The launch file cannot run here (no launch wheels): check it calls the parser it tests."""
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    calls = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, 'id', None) == 'parse_bool_argument'
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]
    # lifecycle and autostart go through parse_node_start
    assert sorted(calls) == ['compressed', 'rviz']
    assert "in ('true', '1')" not in LAUNCH_FILE.read_text()
