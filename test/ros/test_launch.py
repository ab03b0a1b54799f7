"""The launch file (launch / launch_ros are not installable here): syntax and its arguments."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from pixio_ros.ros.params import PARAMETERS

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / 'launch' / 'pixio.launch.py'


def declared_arguments() -> list[str]:
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, 'id', None) == 'DeclareLaunchArgument'
    ]


def test_launch_file_declares_the_documented_arguments():
    assert sorted(declared_arguments()) == sorted(
        ['model', 'params_file', 'namespace', 'camera', 'compressed', 'device']
    )


def test_launch_file_sets_both_fast_dds_profile_variables():
    text = LAUNCH_FILE.read_text()
    assert 'FASTRTPS_DEFAULT_PROFILES_FILE' in text and 'FASTDDS_DEFAULT_PROFILES_FILE' in text
    assert 'fastdds_shm.xml' in text


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
