"""The node on the ONNX backends over real Fast DDS: the torch node tests, run per backend.

The tests imported from test_node.py run here a second time with this module's fixtures: the
artifacts are the ONNX exports of the same tiny networks and every node gets ``backend``
onnxruntime or openvino, so each backend publishes the same topics and passes the same geometry
checks (depth vs points vs camera model, features on their patches, model_info) as torch.
"""

from __future__ import annotations

import json
import typing

import pytest
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_test_helpers import (
    INPUT_SIZE,
    image_msg,
    latched_model_info,
    random_image,
    send_until_received,
    wait_until,
)
from std_msgs.msg import String
from test_node import (  # noqa: F401 (collected here again, on this module's fixtures)
    input_publishers,
    subscribe,
    test_distorted_camera_info_gives_points_on_their_pixels,
    test_every_output_carries_the_input_header_and_agrees,
    test_lazy_outputs_build_no_cloud_without_subscribers,
    test_model_info_is_latched_json_with_sha256,
    test_model_resolution_depth_has_rescaled_camera_info,
    test_without_camera_info_a_depth_head_skips_points,
    test_without_camera_info_points_come_from_the_point_map_head,
)

from pixio_ros.ros import settings
from pixio_ros.ros.node import PixioNode
from pixio_ros.ros.node_process import NodeProcess
from pixio_ros.runtime.backends import BACKEND_CHOICES, backend_available
from pixio_ros.runtime.backends.tensorrt_backend import NO_CUDA
from pixio_ros.runtime.errors import EngineError

pytest.importorskip('onnxruntime', reason='the onnx extra is not installed (pixio_ros[onnx])')

PROCESS_EXIT_S = 90.0
BACKENDS = [
    'onnxruntime',
    pytest.param(
        'openvino',
        marks=pytest.mark.skipif(
            not backend_available('openvino'), reason="pip install 'pixio_ros[openvino]'"
        ),
    ),
]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """OpenVINO's compiled-model cache goes to the test's directory, not ~/.cache."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope='module')
def points_artifact(tiny_artifact):
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE, fmt='onnx')


@pytest.fixture(scope='module')
def depth_artifact(tiny_artifact):
    return tiny_artifact(head_kind='depth', input_size=INPUT_SIZE, fmt='onnx')


@pytest.fixture
def make_node(make_node, backend):
    """The conftest's make_node, with the node's `backend` parameter set."""

    def make(artifact, **parameters) -> PixioNode:
        return make_node(artifact, backend=backend, **parameters)

    return make


def test_the_node_parameter_offers_every_backend():
    assert typing.get_args(settings.Backend) == BACKEND_CHOICES
    assert settings.NodeSettings().backend == 'auto'


def test_the_node_runs_the_backend_it_was_given(make_node, client, points_artifact, backend):
    from diagnostic_msgs.msg import DiagnosticArray

    node = make_node(points_artifact, diagnostics_period=0.2)
    assert node.get_parameter('backend').value == backend
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    client.subscribe(String, 'model_info', latched)
    client.subscribe(DiagnosticArray, '/diagnostics')
    wait_until(lambda: client.messages('model_info'), what='latched model_info')
    info = json.loads(client.messages('model_info')[0].data)
    assert info['format'] == 'onnx' and info['backend']['name'] == backend
    subscribe(client, node, ['depth'])
    image_pub, _ = input_publishers(client, node)
    frame = image_msg(random_image(11), stamp_ns=3)
    send_until_received(client, lambda: image_pub.publish(frame), frame.header, ['depth'])

    def backend_reported() -> str | None:
        # /diagnostics is shared: other nodes alive in this test run report there too.
        for array in reversed(client.messages('/diagnostics')):
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if 'backend' in values and values.get('model sha256') == node.engine.sha256:
                    return values['backend']
        return None

    wait_until(lambda: backend_reported() is not None, what='diagnostics naming the backend')
    assert backend_reported().startswith(f'{backend} ')


def test_auto_on_an_onnx_artifact_picks_an_onnx_backend(ros_context, points_artifact):
    node = PixioNode(
        context=ros_context,
        parameter_overrides=[
            Parameter('model_path', value=str(points_artifact)),
            Parameter('device', value='cpu'),
            Parameter('warmup_runs', value=0),
        ],
    )
    try:
        expected = 'openvino' if backend_available('openvino') else 'onnxruntime'
        assert node.get_parameter('backend').value == 'auto'
        assert node.engine.backend == expected
    finally:
        node.destroy_node()


@pytest.mark.skipif(
    __import__('torch').cuda.is_available(), reason='this machine has CUDA: TensorRT may start'
)
def test_tensorrt_without_cuda_stops_the_node_with_one_line(ros_context, points_artifact):
    overrides = [
        Parameter('model_path', value=str(points_artifact)),
        Parameter('backend', value='tensorrt'),
    ]
    with pytest.raises(EngineError, match='backend tensorrt needs an NVIDIA GPU with CUDA') as info:
        PixioNode(context=ros_context, parameter_overrides=overrides)
    assert '\n' not in str(info.value)


@pytest.mark.skipif(
    __import__('torch').cuda.is_available(), reason='this machine has CUDA: TensorRT may start'
)
def test_the_pixio_node_process_on_tensorrt_without_cuda_exits_with_one_line(
    points_artifact, tmp_path
):
    parameters = {'model_path': str(points_artifact), 'backend': 'tensorrt'}
    with NodeProcess(tmp_path / 'node.log', parameters=parameters) as process:
        wait_until(lambda: not process.running, timeout=PROCESS_EXIT_S, what='pixio_node exit')
        code = process.stop()
    lines = (tmp_path / 'node.log').read_text(errors='replace').splitlines()
    errors = [line for line in lines if 'error' in line.lower()]
    assert code == 1 and 'Traceback' not in '\n'.join(lines), lines
    assert errors == [f'pixio_node: error: {NO_CUDA}'], lines


def test_a_torchscript_artifact_on_an_onnx_backend_stops_the_node(
    ros_context, tiny_artifact, backend
):
    overrides = [
        Parameter('model_path', value=str(tiny_artifact(input_size=INPUT_SIZE))),
        Parameter('device', value='cpu'),
        Parameter('backend', value=backend),
    ]
    with pytest.raises(EngineError, match=f'backend {backend} does not read .*TorchScript'):
        PixioNode(context=ros_context, parameter_overrides=overrides)


@pytest.fixture(scope='module')
def int8_artifact(points_artifact, sample_bag, tmp_path_factory):
    """The points artifact quantised by `pixio-ros quantize` on the sample bag."""
    pytest.importorskip('nncf', reason="pip install 'pixio_ros[quantize]'")
    from pixio_ros.quantization import QuantizeRequest, quantize_artifact

    output = tmp_path_factory.mktemp('int8') / 'points.int8.onnx'
    request = QuantizeRequest(
        artifact=points_artifact,
        output=output,
        calibrate=(sample_bag,),
        frames=6,
        validate_frames=4,
    )
    return quantize_artifact(request).path


def test_the_node_runs_an_int8_artifact_at_precision_int8(
    make_node, client, int8_artifact, backend
):
    node = make_node(int8_artifact, precision='int8')
    assert node.engine.backend_info.precision == 'int8'
    info = latched_model_info(client)
    assert info['dtype'] == 'int8' and info['quantization']['calibration_frames'] == 6
    assert info['backend']['name'] == backend and info['backend']['precision'] == 'int8'
    subscribe(client, node, ['depth'])
    image_pub, _ = input_publishers(client, node)
    frame = image_msg(random_image(12), stamp_ns=5)
    send_until_received(client, lambda: image_pub.publish(frame), frame.header, ['depth'])


def test_an_int8_artifact_at_fp32_stops_the_node(ros_context, int8_artifact):
    with pytest.raises(EngineError, match='INT8 artifact.*set precision int8'):
        PixioNode(
            context=ros_context,
            parameter_overrides=[
                Parameter('model_path', value=str(int8_artifact)),
                Parameter('device', value='cpu'),
                Parameter('warmup_runs', value=0),
            ],
        )
