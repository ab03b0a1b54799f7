"""The installed package: ament index, share directory contents, consistent versions."""

from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    'relative_path',
    ['package.xml', 'launch/pixio.launch.py', 'config/pixio.yaml', 'config/fastdds_shm.xml'],
)
def test_share_directory_holds_installed_file(relative_path):
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory('pixio_ros'))
    assert (share / relative_path).is_file(), f'{relative_path} missing from {share}'


def test_package_xml_and_setup_py_versions_agree():
    xml_version = ET.parse(REPO_ROOT / 'package.xml').getroot().findtext('version')
    setup_call = next(
        node
        for node in ast.walk(ast.parse((REPO_ROOT / 'setup.py').read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'setup'
    )
    setup_version = next(kw.value.value for kw in setup_call.keywords if kw.arg == 'version')
    assert xml_version == setup_version


def test_package_xml_declares_ament_python_format_3():
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    assert root.get('format') == '3'
    assert root.findtext('export/build_type') == 'ament_python'


def test_cli_help_lists_subcommands():
    result = subprocess.run(
        [sys.executable, '-m', 'pixio_ros.cli', '--help'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'usage: pixio-ros' in result.stdout
    assert 'demo' in result.stdout
