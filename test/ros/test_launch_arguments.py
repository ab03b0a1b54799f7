"""Launch arguments for several cameras and the lifecycle node; the launch file uses them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pixio_ros.ros.launch_arguments import (
    LIFECYCLE_EXECUTABLE,
    NODE_EXECUTABLE,
    POLICY_EXECUTABLE,
    RVIZ_MISSING,
    RVIZ_PACKAGE,
    NodeStart,
    input_remappings,
    parse_cameras_argument,
    parse_node_start,
    rviz_installed,
    rviz_view,
)

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / 'launch' / 'pixio.launch.py'


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('', None),
        ('  ', None),
        ('front', ('front',)),
        ('front,left', ('front', 'left')),
        (' front, left  right ', ('front', 'left', 'right')),
        ('arm/wrist,,front', ('arm/wrist', 'front')),
    ],
)
def test_cameras_argument_splits_on_commas_and_spaces(text, expected):
    assert parse_cameras_argument(text) == expected


def test_one_camera_is_remapped_onto_the_driver_topics():
    assert input_remappings('/camera/', ()) == [
        ('image', '/camera/image_raw'),
        ('image/compressed', '/camera/image_raw/compressed'),
        ('camera_info', '/camera/camera_info'),
    ]


def test_each_camera_is_remapped_under_its_name():
    assert input_remappings('/', ('front', 'arm/wrist')) == [
        ('front/image', '/front/image_raw'),
        ('front/image/compressed', '/front/image_raw/compressed'),
        ('front/camera_info', '/front/camera_info'),
        ('arm/wrist/image', '/arm/wrist/image_raw'),
        ('arm/wrist/image/compressed', '/arm/wrist/image_raw/compressed'),
        ('arm/wrist/camera_info', '/arm/wrist/camera_info'),
    ]
    assert input_remappings('/rig', ('front',))[0] == ('front/image', '/rig/front/image_raw')


@pytest.mark.parametrize(
    ('lifecycle', 'autostart', 'expected'),
    [
        ('', '', NodeStart(lifecycle=False, autostart=False)),
        ('false', 'false', NodeStart(lifecycle=False, autostart=False)),
        ('true', '', NodeStart(lifecycle=True, autostart=False)),
        ('True', 'yes', NodeStart(lifecycle=True, autostart=True)),
    ],
)
def test_node_start(lifecycle, autostart, expected):
    assert parse_node_start(lifecycle, autostart) == expected


def test_executables():
    assert NodeStart(lifecycle=False, autostart=False).executable == NODE_EXECUTABLE
    assert NodeStart(lifecycle=True, autostart=True).executable == LIFECYCLE_EXECUTABLE


def test_autostart_without_lifecycle_is_refused():
    with pytest.raises(ValueError, match='autostart:=true needs lifecycle:=true'):
        parse_node_start('false', 'true')


def test_lifecycle_argument_must_be_a_boolean():
    with pytest.raises(ValueError, match="lifecycle:='managed' is not a boolean"):
        parse_node_start('managed', '')


def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def called_names(tree: ast.Module) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def test_launch_file_uses_the_tested_helpers():
    """The launch file cannot run here (no launch wheels): it must call the functions above."""
    names = called_names(launch_tree())
    assert {'parse_cameras_argument', 'parse_node_start', 'input_remappings'} <= names
    assert {'Node', 'LifecycleNode', 'OnStateTransition', 'ChangeState'} <= names


def test_launch_file_starts_each_executable_by_its_console_script_name():
    executables = {
        (node.func.id, keyword.value.value)
        for node in ast.walk(launch_tree())
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        for keyword in node.keywords
        if keyword.arg == 'executable' and isinstance(keyword.value, ast.Constant)
    }
    assert executables == {
        ('Node', NODE_EXECUTABLE),
        ('LifecycleNode', LIFECYCLE_EXECUTABLE),
        ('Node', POLICY_EXECUTABLE),
    }
    setup_text = (REPO / 'setup.py').read_text()
    for executable in (NODE_EXECUTABLE, LIFECYCLE_EXECUTABLE, POLICY_EXECUTABLE):
        assert f"'{executable} = pixio_ros.ros." in setup_text


@pytest.mark.parametrize(
    ('namespace', 'camera', 'cameras', 'view_namespace', 'image'),
    [
        ('', '/camera', (), '', '/camera/image_raw'),
        ('/robot/', '/robot/camera/', (), '/robot', '/robot/camera/image_raw'),
        ('pixio', '/', ('front', 'left'), 'pixio/front', '/front/image_raw'),
        ('', '/rig', ('arm/wrist',), 'arm/wrist', '/rig/arm/wrist/image_raw'),
    ],
)
def test_rviz_runs_where_the_first_cameras_outputs_are(
    namespace, camera, cameras, view_namespace, image
):
    view = rviz_view(namespace, camera, cameras, config='/share/pixio.rviz')
    assert view.namespace == view_namespace
    assert ('image', image) in view.remappings
    assert view.arguments == ['-d', '/share/pixio.rviz']


def test_rviz_fixed_frame_argument():
    view = rviz_view('', '/camera', (), config='c.rviz', fixed_frame='zed_left_optical_frame')
    assert view.arguments == ['-d', 'c.rviz', '-f', 'zed_left_optical_frame']


def test_rviz_installed_reads_the_ament_index(tmp_path, monkeypatch):
    """An ament prefix with an rviz2 marker counts as installed; the venv's prefix has none."""
    marker = tmp_path / 'share' / 'ament_index' / 'resource_index' / 'packages' / RVIZ_PACKAGE
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    assert not rviz_installed()
    marker.parent.mkdir(parents=True)
    marker.touch()
    assert rviz_installed()


def test_launch_file_starts_rviz_through_the_tested_helpers_or_says_it_is_missing():
    names = called_names(launch_tree())
    assert {'rviz_installed', 'rviz_view', 'LogInfo'} <= names
    assert 'not installed' in RVIZ_MISSING and 'rviz2' in RVIZ_MISSING
    assert '\n' not in RVIZ_MISSING
