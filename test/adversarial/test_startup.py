"""Hostile files at start-up: `pixio_node` exits with code 1 and one line, never a traceback.

Issue 12, defects 5, 6 and 8: a .pt2 that is not an artifact printed torch's traceback, a params
file with a YAML error (or none at all) ended in rclpy's traceback, and a directory as model_path
was reported as missing. The processes start together, so the module costs one start-up; the
other file defects (a torch.save checkpoint named .pt2, a missing params file) are unit tests of
`pixio_ros.model.artifact_format` and `pixio_ros.ros.params`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from adversarial_helpers import wait_until

from pixio_ros.ros.node_process import NodeProcess

EXIT_WAIT_S = 90.0


def plain_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('readme.txt', 'not a model')
    return path


def yaml_error(path: Path) -> Path:
    path.write_text('/**:\n  ros__parameters:\n    max_rate_hz: [1.0\n')
    return path


# name -> (model_path maker, params file maker, what the one line must say)
CASES = {
    'zip named .pt2': (lambda d: plain_zip(d / 'model.pt2'), None, 'model.pt2 is a zip archive'),
    'directory as model_path': (lambda d: d, None, 'is a directory'),
    'params file with a YAML error': (
        lambda d: d / 'unused.ts',
        lambda d: yaml_error(d / 'broken.yaml'),
        'broken.yaml',
    ),
}


@pytest.fixture(scope='module')
def exits(tmp_path_factory):
    """Every case's node started at once; name -> (exit code, log lines)."""
    started = {}
    for name, (model, params, _) in CASES.items():
        directory = tmp_path_factory.mktemp('startup')
        node = NodeProcess(directory / 'node.log', parameters={'model_path': str(model(directory))})
        if params is not None:
            node.command += ['--params-file', str(params(directory))]
        node.start()
        started[name] = node
    results = {}
    try:
        for name, node in started.items():
            wait_until(lambda n=node: not n.running, what=f'{name}: exit', timeout=EXIT_WAIT_S)
            code = node.stop()
            results[name] = (code, node.log.read_text(errors='replace').splitlines())
    finally:
        for node in started.values():
            node.stop()
    return results


@pytest.mark.parametrize('case', list(CASES))
def test_hostile_file_is_one_line_and_exit_code_1(exits, case):
    code, lines = exits[case]
    text = '\n'.join(lines)
    assert code == 1, text
    assert 'Traceback' not in text
    errors = [line for line in lines if 'error' in line.lower()]
    assert len(errors) == 1, text
    assert CASES[case][2] in errors[0], text
    assert errors[0].startswith('pixio_node: error: '), text
