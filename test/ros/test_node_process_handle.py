"""ros.node_process.NodeProcess: the node as a child process, its command line, log, shutdown."""

from __future__ import annotations

import time

import pytest

from pixio_ros.ros.node_process import NodeProcess


def test_command_line_carries_remappings_and_ros_typed_parameters(tmp_path):
    process = NodeProcess(
        tmp_path / 'node.log',
        parameters={'model_path': '/m.ts', 'use_sim_time': True, 'warmup_runs': 3},
        remappings={'__ns': '/pixio', 'image': '/camera/color/image_raw'},
    )
    assert process.command[1:] == [
        '-m',
        'pixio_ros.ros.node',
        '--ros-args',
        '-r',
        '__ns:=/pixio',
        '-r',
        'image:=/camera/color/image_raw',
        '-p',
        'model_path:=/m.ts',
        '-p',
        'use_sim_time:=true',
        '-p',
        'warmup_runs:=3',
    ]


@pytest.mark.timeout(120)
def test_a_node_that_cannot_start_exits_and_its_log_says_why(tmp_path):
    missing = tmp_path / 'none.ts'
    with NodeProcess(tmp_path / 'node.log', parameters={'model_path': str(missing)}) as node:
        deadline = time.monotonic() + 100
        while node.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not node.running
    assert node.stop() == 1
    assert str(missing) in node.tail(1)


@pytest.mark.timeout(120)
def test_a_running_node_is_stopped_by_sigint(tmp_path, tiny_artifact):
    model = tiny_artifact(head_kind='depth')
    node = NodeProcess(tmp_path / 'node.log', parameters={'model_path': str(model)})
    node.start()
    try:
        deadline = time.monotonic() + 100
        while 'input' not in node.tail(50) and node.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node.running, node.tail()
    finally:
        code = node.stop()
    assert code == 0, node.tail()
