"""The installed package: ament index, share and libexec contents, versions, declared deps."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    'relative_path',
    [
        'package.xml',
        'launch/pixio.launch.py',
        'config/pixio.yaml',
        'config/fastdds_shm.xml',
        'config/pixio.rviz',
    ],
)
def test_share_directory_holds_installed_file(relative_path):
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory('pixio_ros'))
    assert (share / relative_path).is_file(), f'{relative_path} missing from {share}'


def setup_py_version() -> str:
    setup_call = next(
        node
        for node in ast.walk(ast.parse((REPO_ROOT / 'setup.py').read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'setup'
    )
    return next(kw.value.value for kw in setup_call.keywords if kw.arg == 'version')


# A CHANGELOG.rst section title (ROS format, as catkin_generate_changelog writes it) and its rule.
RELEASE_TITLE = re.compile(r'(?P<version>\d+\.\d+\.\d+) \((?P<date>\d{4}-\d{2}-\d{2})\)')
FORTHCOMING = 'Forthcoming'


def changelog_sections() -> list[str]:
    """The section titles of CHANGELOG.rst, newest first; each must be underlined with '-'."""
    lines = (REPO_ROOT / 'CHANGELOG.rst').read_text().splitlines()
    assert lines[:3] == ['^' * 31, 'Changelog for package pixio_ros', '^' * 31]
    titles = []
    for title, rule in zip(lines, lines[1:], strict=False):
        if rule and set(rule) == {'-'}:
            assert len(rule) == len(title), f'the rule under {title!r} must be as long as it'
            titles.append(title)
    return titles


def test_package_xml_setup_py_and_changelog_versions_agree():
    """package.xml, setup.py and the newest release of CHANGELOG.rst name one version."""
    xml_version = ET.parse(REPO_ROOT / 'package.xml').getroot().findtext('version')
    titles = changelog_sections()
    # Only unreleased changes (catkin_prepare_release renames the section) may stand above.
    releases = titles[1:] if titles and titles[0] == FORTHCOMING else titles
    matches = [RELEASE_TITLE.fullmatch(title) for title in releases]
    assert all(matches), f'CHANGELOG.rst section titles must be "X.Y.Z (YYYY-MM-DD)": {releases}'
    versions = [match['version'] for match in matches if match]
    assert versions, 'CHANGELOG.rst has no release'
    assert xml_version == setup_py_version() == versions[0]
    ordered = sorted(versions, key=lambda v: tuple(int(part) for part in v.split('.')))
    assert versions == ordered[::-1], 'releases must be listed newest first'


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


# --- ROS executables where ros2 run and launch_ros look: <prefix>/lib/<package>/ ---------------

LAUNCH_FILE = REPO_ROOT / 'launch' / 'pixio.launch.py'


def launched_executables() -> list[str]:
    """The `executable=` of every launch_ros Node and LifecycleNode in the launch file."""
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    return sorted(
        {
            keyword.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and getattr(node.func, 'id', None) in ('Node', 'LifecycleNode')
            for keyword in node.keywords
            if keyword.arg == 'executable' and isinstance(keyword.value, ast.Constant)
        }
    )


@pytest.mark.parametrize('executable', launched_executables())
def test_ament_index_finds_the_executable_where_launch_ros_looks(executable):
    from ament_index_python.packages import get_package_prefix

    libexec = Path(get_package_prefix('pixio_ros')) / 'lib' / 'pixio_ros'
    path = libexec / executable
    assert path.is_file(), f'{path} missing: `make setup` links console scripts into {libexec}'
    assert os.access(path, os.X_OK), f'{path} is not executable'


def test_libexec_pixio_node_starts_and_exits_with_one_line_for_a_missing_model(tmp_path):
    from ament_index_python.packages import get_package_prefix

    node = Path(get_package_prefix('pixio_ros')) / 'lib' / 'pixio_ros' / 'pixio_node'
    missing = tmp_path / 'no_such_model.ts'
    result = subprocess.run(
        [str(node), '--ros-args', '-p', f'model_path:={missing}'],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(output) == 1 and str(missing) in output[0], output


# --- package.xml declares the ROS packages the code imports, and nothing else ------------------

# Exec dependencies that no module imports: the middleware RMW_IMPLEMENTATION and our Fast DDS
# profiles select at run time, and rcl_lifecycle, which rclpy.lifecycle loads.
RUNTIME_ONLY_ROS_DEPENDENCIES = frozenset({'rmw_fastrtps_cpp', 'rcl_lifecycle'})
# ROS packages without wheels here, so missing from the venv's ament index.
ROS_PACKAGES_WITHOUT_WHEELS = frozenset({'launch', 'launch_ros'})


def ros_exec_depends() -> set[str]:
    """package.xml's exec_depends that are ROS packages (rosdep's python3-* keys left out)."""
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    return {
        element.text.strip()
        for element in root.findall('exec_depend')
        if element.text and not element.text.startswith('python3-')
    }


def imported_ros_packages() -> set[str]:
    """Top-level imports of pixio_ros/ and launch/ that name a ROS package."""
    from ament_index_python.packages import get_packages_with_prefixes

    known = set(get_packages_with_prefixes()) | ROS_PACKAGES_WITHOUT_WHEELS
    imported = set()
    for path in [*(REPO_ROOT / 'pixio_ros').rglob('*.py'), *(REPO_ROOT / 'launch').glob('*.py')]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split('.')[0])
    return (imported & known) - {'pixio_ros'}


def test_package_xml_declares_exactly_the_ros_packages_the_code_imports():
    declared = ros_exec_depends()
    imported = imported_ros_packages()
    assert imported <= declared, f'imported but not in package.xml: {sorted(imported - declared)}'
    unused = declared - imported - RUNTIME_ONLY_ROS_DEPENDENCIES
    assert not unused, f'declared in package.xml but never imported: {sorted(unused)}'


@pytest.mark.parametrize(('distro', 'extra'), [('jazzy', 'ros'), ('kilted', 'ros-kilted')])
def test_setup_py_ros_extra_installs_each_declared_ros_package(distro, extra):
    setup_source = (REPO_ROOT / 'setup.py').read_text()
    for package in sorted(ros_exec_depends() - ROS_PACKAGES_WITHOUT_WHEELS):
        wheel = f'ros-{distro}-{package.replace("_", "-")}'
        assert f"'{wheel}'" in setup_source, f'{wheel} missing from extras_require["{extra}"]'
