"""Layering: rclpy and ROS message packages are imported only under pixio_ros/ros/.

model, runtime, data, evaluation, training and the commands must work (and be testable) without
a ROS installation; the README states the rule and this test keeps it true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / 'pixio_ros'
ROS_LAYER = PACKAGE / 'ros'
ROS_ONLY_MODULES = frozenset(
    {
        'rclpy',
        'sensor_msgs',
        'std_msgs',
        'diagnostic_msgs',
        'rcl_interfaces',
        'builtin_interfaces',
        'lifecycle_msgs',
        'rosgraph_msgs',
        'geometry_msgs',
    }
)


def imported_modules(source: str, filename: str = '<source>') -> list[tuple[int, str]]:
    """(line, top-level module) of every import in `source`, function-local ones included."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split('.')[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split('.')[0]))
    return found


def ros_imports_outside_the_ros_layer(package: Path) -> list[str]:
    """'path:line imports module' for each forbidden import outside package/ros/."""
    offences = []
    for path in sorted(package.rglob('*.py')):
        if (package / 'ros') in path.parents:
            continue
        for line, module in imported_modules(path.read_text(), str(path)):
            if module in ROS_ONLY_MODULES:
                offences.append(f'{path.relative_to(package.parent)}:{line} imports {module}')
    return offences


def test_no_module_outside_ros_imports_rclpy_or_message_packages():
    assert ros_imports_outside_the_ros_layer(PACKAGE) == []


def test_the_ros_layer_is_where_rclpy_is_imported():
    """Guards the walk itself: it must see the imports it is meant to forbid elsewhere."""
    node_imports = {m for _, m in imported_modules((ROS_LAYER / 'node.py').read_text())}
    assert 'rclpy' in node_imports


@pytest.mark.parametrize(
    'source',
    [
        'import rclpy\n',
        'from sensor_msgs.msg import Image\n',
        'def run():\n    from rosgraph_msgs.msg import Clock\n',
        'import std_msgs.msg as m\n',
    ],
)
def test_a_stray_import_is_reported(tmp_path, source):
    package = tmp_path / 'pkg'
    (package / 'commands').mkdir(parents=True)
    (package / 'ros').mkdir()
    (package / 'ros' / 'fine.py').write_text(source)
    (package / 'commands' / 'stray.py').write_text(source)
    assert ros_imports_outside_the_ros_layer(package) == [
        f'pkg/commands/stray.py:{source.count(chr(10))} imports '
        f'{next(m for m in ROS_ONLY_MODULES if m in source)}'
    ]
