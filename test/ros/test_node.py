"""PixioNode in-process over real Fast DDS: outputs, geometry, bad frames, overload, laziness."""

from __future__ import annotations

import hashlib
import time

import cv2
import numpy as np
import pytest
from cloud_reader import cloud_array
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_helpers import (
    CX,
    CY,
    FX,
    FY,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    INPUT_SIZE,
    camera_info_msg,
    image_msg,
    latched_model_info,
    output_types,
    random_image,
    send_until_received,
    set_header,
    stamp_key,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from pixio_ros.model.artifact_format import ArtifactError
from pixio_ros.ros.errors import NodeError
from pixio_ros.ros.node import PixioNode

ALL_OUTPUTS = ['depth', 'depth/camera_info', 'depth/colored', 'points', 'features', 'embedding']
OUTPUT_TYPES = output_types()
EMBED_DIM = 64
PATCH_PIXELS = 24  # 16-pixel patches of the 64x96 input seen at 96x144
CAMERA_PERIOD_S = 0.05
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Overload: a ~300 Hz camera, several times faster than the tiny model on two cores.
OVERLOAD_FRAMES = 300
OVERLOAD_CAMERA_PERIOD_S = 0.003
OVERLOAD_WARMUP_RUNS = 2
AGE_INFERENCE_MULTIPLE = 5.0
AGE_SLACK_MS = 500.0
# How long to listen for a message that must not come, after the frame's other outputs arrived.
QUIET_WAIT_S = 0.5
NO_DEPTH_OUTPUTS = ['depth', 'depth/camera_info', 'depth/colored', 'points']
SLOW_RATE_HZ = 0.01
RATE_CHANGE_WAIT_S = 10.0


def subscribe(client, node, topics):
    for topic in topics:
        client.subscribe(OUTPUT_TYPES[topic], topic)
    for topic in topics:
        wait_until(lambda t=topic: node.count_subscribers(t) > 0, what=f'{topic} subscriber')


def input_publishers(client, node, msg_type=Image, topic='image', info=None):
    """Image and camera_info publishers matched with the node; `info` is delivered first."""
    image_pub = client.node.create_publisher(msg_type, topic, RELIABLE)
    info_pub = client.node.create_publisher(CameraInfo, 'camera_info', RELIABLE)
    wait_until(lambda: node.count_publishers(topic) > 0, what='image publisher seen by node')
    wait_until(lambda: image_pub.get_subscription_count() > 0, what='node image subscription')
    wait_until(lambda: info_pub.get_subscription_count() > 0, what='camera_info subscription')
    if info is not None:
        info_pub.publish(info)
        wait_until(lambda: node.has_camera_info, what='CameraInfo stored')
    return image_pub, info_pub


def depth_array(msg: Image) -> np.ndarray:
    assert msg.encoding == '32FC1' and msg.step == msg.width * 4
    return np.frombuffer(bytes(msg.data), dtype='<f4').reshape(msg.height, msg.width)


def test_every_output_carries_the_input_header_and_agrees(make_node, client, points_artifact):
    node = make_node(points_artifact)
    subscribe(client, node, ALL_OUTPUTS)
    info = camera_info_msg()
    image_pub, info_pub = input_publishers(client, node, info=info)
    rgb = random_image(1)
    frame = image_msg(rgb, stamp_ns=1_700_000_000_123_456_789)

    def publish():
        info_pub.publish(info)
        image_pub.publish(frame)

    got = send_until_received(client, publish, frame.header, ALL_OUTPUTS)
    for topic, msg in got.items():
        assert stamp_key(msg.header) == stamp_key(frame.header), topic

    depth = depth_array(got['depth'])
    assert depth.shape == (IMAGE_HEIGHT, IMAGE_WIDTH)
    assert np.isfinite(depth).all() and (depth > 0).all()
    np.testing.assert_allclose(got['depth/camera_info'].k, info.k)
    assert got['depth/colored'].encoding == 'bgr8'

    cloud = cloud_array(got['points'])
    assert cloud.shape == (IMAGE_HEIGHT, IMAGE_WIDTH)
    v, u = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH]
    np.testing.assert_array_equal(cloud['z'], depth)
    np.testing.assert_allclose(cloud['x'], (u - CX) * depth / FX, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cloud['y'], (v - CY) * depth / FY, rtol=1e-5, atol=1e-6)
    bits = cloud['rgb'].view(np.uint32)
    np.testing.assert_array_equal((bits >> 16) & 255, rgb[..., 0])
    np.testing.assert_array_equal(bits & 255, rgb[..., 2])
    assert 'confidence' in cloud.dtype.names

    features = cloud_array(got['features'])
    assert features.shape == (IMAGE_HEIGHT // PATCH_PIXELS, IMAGE_WIDTH // PATCH_PIXELS)
    assert features['feature'].shape[-1] == EMBED_DIM
    blocks = depth.reshape(4, PATCH_PIXELS, 6, PATCH_PIXELS).mean(axis=(1, 3))
    centre_u = (np.arange(6) + 0.5) * PATCH_PIXELS - 0.5
    np.testing.assert_allclose(features['z'], blocks, rtol=1e-4)
    np.testing.assert_allclose(features['x'], (centre_u - CX) * blocks / FX, rtol=1e-4, atol=1e-6)

    embedding = cloud_array(got['embedding'])
    assert embedding.shape == (1, 1)
    assert embedding['embedding'].shape[-1] == EMBED_DIM


def test_model_resolution_depth_has_rescaled_camera_info(make_node, client, points_artifact):
    node = make_node(points_artifact, depth_resolution='model')
    topics = ['depth', 'depth/camera_info', 'points']
    subscribe(client, node, topics)
    info = camera_info_msg()
    image_pub, info_pub = input_publishers(client, node, info=info)
    frame = image_msg(random_image(2), stamp_ns=5)

    def publish():
        info_pub.publish(info)
        image_pub.publish(frame)

    got = send_until_received(client, publish, frame.header, topics)
    depth = depth_array(got['depth'])
    assert depth.shape == (64, 96)
    scale = 96 / IMAGE_WIDTH
    fx, cx = FX * scale, (CX + 0.5) * scale - 0.5
    fy, cy = FY * scale, (CY + 0.5) * scale - 0.5
    k = got['depth/camera_info'].k
    np.testing.assert_allclose([k[0], k[2], k[4], k[5]], [fx, cx, fy, cy])
    assert (got['depth/camera_info'].width, got['depth/camera_info'].height) == (96, 64)
    cloud = cloud_array(got['points'])
    u = np.arange(96)[np.newaxis]
    np.testing.assert_allclose(cloud['x'], (u - cx) * depth / fx, rtol=1e-5, atol=1e-6)


def test_model_info_is_latched_json_with_sha256(make_node, client, points_artifact):
    make_node(points_artifact)
    info = latched_model_info(client)
    assert info['sha256'] == hashlib.sha256(points_artifact.read_bytes()).hexdigest()
    assert info['input_size'] == [64, 96]
    assert info['head_kind'] == 'points'


def test_without_camera_info_points_come_from_the_point_map_head(
    make_node, client, points_artifact
):
    node = make_node(points_artifact)
    topics = ['depth', 'points', 'embedding']
    subscribe(client, node, [*topics, 'depth/camera_info'])
    image_pub, _ = input_publishers(client, node)
    frame = image_msg(random_image(3), stamp_ns=7)
    got = send_until_received(client, lambda: image_pub.publish(frame), frame.header, topics)
    assert cloud_array(got['points']).shape == (IMAGE_HEIGHT, IMAGE_WIDTH)
    assert client.messages('depth/camera_info') == []


def test_without_camera_info_a_depth_head_skips_points(make_node, client, depth_artifact):
    node = make_node(depth_artifact)
    subscribe(client, node, ['depth', 'embedding', 'points'])
    image_pub, _ = input_publishers(client, node)
    frame = image_msg(random_image(4), stamp_ns=9)
    send_until_received(
        client, lambda: image_pub.publish(frame), frame.header, ['depth', 'embedding']
    )
    assert client.messages('points') == []
    assert node.stats.snapshot().clouds_built == 0


def bad_images() -> dict[str, Image]:
    good = image_msg(random_image(5))
    unknown = image_msg(random_image(5))
    unknown.encoding = 'rgb16'
    truncated = image_msg(random_image(5))
    truncated.data = bytes(100)
    empty = Image(height=0, width=0, encoding='rgb8', step=0)
    # A float (depth-style) image is not a camera encoding the node can turn into RGB.
    float_image = Image(
        height=IMAGE_HEIGHT, width=IMAGE_WIDTH, encoding='32FC1', step=IMAGE_WIDTH * 4
    )
    float_image.data = np.ones((IMAGE_HEIGHT, IMAGE_WIDTH), np.float32).tobytes()
    return {
        'good': good,
        'unknown encoding': unknown,
        'truncated': truncated,
        'zero size': empty,
        '32FC1 float encoding': float_image,
    }


def test_bad_frames_are_counted_and_skipped(make_node, client, points_artifact):
    node = make_node(points_artifact)
    subscribe(client, node, ['depth', 'points'])
    image_pub, info_pub = input_publishers(client, node)
    frames = bad_images()
    bad_names = ['unknown encoding', 'truncated', 'zero size', '32FC1 float encoding']
    for index, name in enumerate(bad_names):
        failed_before = node.stats.snapshot().errors.get('decode', 0)
        set_header(frames[name], 'camera_optical', 100 + index)
        image_pub.publish(frames[name])
        wait_until(
            lambda b=failed_before: node.stats.snapshot().errors.get('decode', 0) > b,
            what=f'{name} counted',
        )
    # A CameraInfo that does not describe the image is an error for that frame only.
    info_pub.publish(camera_info_msg(width=1280, height=720))
    wait_until(lambda: node.has_camera_info, what='CameraInfo stored')
    set_header(frames['good'], 'camera_optical', 200)
    image_pub.publish(frames['good'])
    wait_until(
        lambda: node.stats.snapshot().errors.get('camera_info', 0) == 1,
        what='mismatched CameraInfo counted',
    )
    assert client.messages('depth') == []
    # The next good frame with a matching CameraInfo goes through.
    info = camera_info_msg()
    set_header(frames['good'], 'camera_optical', 300)

    def publish():
        info_pub.publish(info)
        image_pub.publish(frames['good'])

    send_until_received(client, publish, frames['good'].header, ['depth', 'points'])
    snapshot = node.stats.snapshot()
    assert snapshot.errors == {'decode': 4, 'camera_info': 1}
    assert snapshot.failed == 5


def test_compressed_input_and_corrupt_jpeg(make_node, client, points_artifact):
    node = make_node(points_artifact, compressed_input=True)
    subscribe(client, node, ['depth'])
    image_pub, _ = input_publishers(client, node, CompressedImage, 'image/compressed')
    corrupt = CompressedImage(format='jpeg', data=b'\xff\xd8\xff\xe0 not really a jpeg')
    set_header(corrupt, 'camera_optical', 11)
    image_pub.publish(corrupt)
    wait_until(lambda: node.stats.snapshot().errors.get('decode', 0) == 1, what='corrupt JPEG')
    ok, jpeg = cv2.imencode('.jpg', random_image(6))
    assert ok
    good = CompressedImage(format='jpeg', data=jpeg.tobytes())
    set_header(good, 'camera_optical', 12)
    got = send_until_received(client, lambda: image_pub.publish(good), good.header, ['depth'])
    assert depth_array(got['depth']).shape == (IMAGE_HEIGHT, IMAGE_WIDTH)


def stamp_now(client, msg) -> None:
    """Stamp `msg` with the ROS clock's now, as a camera driver does."""
    msg.header.frame_id = 'camera_optical'
    msg.header.stamp = client.node.get_clock().now().to_msg()


def test_overload_drops_old_frames_and_keeps_message_age_bounded(
    make_node, client, points_artifact
):
    # Warm-up runs keep the slow first forward pass out of the inference times.
    node = make_node(
        points_artifact,
        warmup_runs=OVERLOAD_WARMUP_RUNS,
        **{'input_qos.reliability': 'reliable', 'input_qos.depth': 100},
    )
    subscribe(client, node, ['depth', 'points', 'features'])
    image_pub = client.node.create_publisher(
        Image, 'image', QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    )
    wait_until(lambda: image_pub.get_subscription_count() > 0, what='image subscription')
    frame = image_msg(random_image(7))
    # A camera several times faster than the node: a queue anywhere would make ages grow.
    for _ in range(OVERLOAD_FRAMES):
        stamp_now(client, frame)
        image_pub.publish(frame)
        time.sleep(OVERLOAD_CAMERA_PERIOD_S)
    count = OVERLOAD_FRAMES

    def settled() -> bool:
        s = node.stats.snapshot()
        return s.received == count and s.processed + s.dropped + s.failed == count

    wait_until(settled, what='all frames received and processed or dropped')
    newest = stamp_key(frame.header)
    wait_until(
        lambda: any(stamp_key(m.header) == newest for m in client.messages('depth')),
        what='the newest frame processed',
    )
    snapshot = node.stats.snapshot()
    assert snapshot.dropped > 0
    assert snapshot.failed == 0
    stamps = [stamp_key(m.header) for m in client.messages('depth')]
    assert stamps == sorted(set(stamps))  # newest-first processing, never an older frame later
    assert len(stamps) <= snapshot.processed < count
    # Newest-frame processing keeps the age near one or two inference times; a backlog of the
    # OVERLOAD_FRAMES would add seconds.
    age_bound_ms = AGE_INFERENCE_MULTIPLE * snapshot.inference_ms_p95 + AGE_SLACK_MS
    assert snapshot.age_ms_p95 <= age_bound_ms, (snapshot.age_ms_p95, snapshot.inference_ms_p95)


def test_lazy_outputs_build_no_cloud_without_subscribers(make_node, client, points_artifact):
    node = make_node(points_artifact)
    image_pub, info_pub = input_publishers(client, node)
    frame = image_msg(random_image(8), stamp_ns=1)
    image_pub.publish(frame)
    wait_until(lambda: node.stats.snapshot().idle >= 1, what='frame without subscribers')
    subscribe(client, node, ['depth'])
    info = camera_info_msg()

    def publish():
        info_pub.publish(info)
        image_pub.publish(frame)

    for stamp in (2, 3):
        set_header(frame, 'camera_optical', stamp)
        send_until_received(client, publish, frame.header, ['depth'])
    snapshot = node.stats.snapshot()
    assert snapshot.clouds_built == 0 and snapshot.feature_clouds_built == 0
    subscribe(client, node, ['points'])
    set_header(frame, 'camera_optical', 4)
    send_until_received(client, publish, frame.header, ['points'])
    assert node.stats.snapshot().clouds_built >= 1


def test_parameters_change_live_and_read_only_ones_are_refused(make_node, client, points_artifact):
    node = make_node(points_artifact)
    subscribe(client, node, ['points', 'features'])
    info = camera_info_msg()
    image_pub, info_pub = input_publishers(client, node, info=info)
    frame = image_msg(random_image(9))

    def publish():
        info_pub.publish(info)
        image_pub.publish(frame)

    changes = [
        Parameter('points.stride', value=2),
        Parameter('features.dtype', value='float16'),
        Parameter('points.rgb', value=False),
    ]
    assert all(result.successful for result in node.set_parameters(changes))
    set_header(frame, 'camera_optical', 21)
    got = send_until_received(client, publish, frame.header, ['points', 'features'])
    assert (got['points'].height, got['points'].width) == (IMAGE_HEIGHT // 2, IMAGE_WIDTH // 2)
    assert [f.name for f in got['points'].fields] == ['x', 'y', 'z', 'confidence']
    assert got['features'].fields[3].name == 'feature_f16'

    refused = {
        'model_path': 'other.ts',
        'device': 'cuda',
        'precision': 'fp16',
        'depth_resolution': 'huge',
        'features.dtype': 'int8',
        'points.stride': 0,
        'max_rate_hz': -1.0,
    }
    for name, value in refused.items():
        [result] = node.set_parameters([Parameter(name, value=value)])
        assert not result.successful, name
        assert result.reason, name
    [read_only] = node.set_parameters([Parameter('model_path', value='other.ts')])
    assert 'read-only' in read_only.reason
    [choice] = node.set_parameters([Parameter('depth_resolution', value='huge')])
    assert 'camera, model' in choice.reason
    assert node.get_parameter('points.stride').value == 2
    [max_range] = node.set_parameters([Parameter('points.max_range', value=2.0)])
    assert max_range.successful
    [crossed] = node.set_parameters([Parameter('points.min_range', value=5.0)])
    assert not crossed.successful
    assert 'points.min_range=5.0 is greater than points.max_range=2.0' in crossed.reason
    assert node.get_parameter('points.min_range').value == 0.0


def test_diagnostics_report_rates_latency_and_counters(make_node, client, points_artifact):
    from diagnostic_msgs.msg import DiagnosticArray

    node = make_node(points_artifact, diagnostics_period=0.2)
    client.subscribe(DiagnosticArray, '/diagnostics')
    subscribe(client, node, ['depth'])
    image_pub, _ = input_publishers(client, node)
    frame = image_msg(random_image(10), stamp_ns=1)
    send_until_received(client, lambda: image_pub.publish(frame), frame.header, ['depth'])

    def reported_processed() -> dict[str, str] | None:
        for array in reversed(client.messages('/diagnostics')):
            values = {kv.key: kv.value for kv in array.status[0].values}
            if int(values['frames processed']) >= 1:
                return values
        return None

    wait_until(lambda: reported_processed() is not None, what='diagnostics after a frame')
    values = reported_processed()
    assert values['device'] == 'cpu'
    assert float(values['inference ms p50']) > 0
    for key in (
        'input rate hz',
        'output rate hz',
        'inference ms p95',
        'message age ms p50',
        'frames dropped',
        'frames failed',
        'memory rss mib',
        'model sha256',
    ):
        assert key in values


def test_missing_or_empty_model_path_stops_the_node(ros_context, tmp_path):
    with pytest.raises(ArtifactError, match='does not exist.*pixio-ros export'):
        PixioNode(
            context=ros_context,
            parameter_overrides=[Parameter('model_path', value=str(tmp_path / 'no.ts'))],
        )
    with pytest.raises(ArtifactError, match='is a directory, not an artifact file'):
        PixioNode(
            context=ros_context,
            parameter_overrides=[Parameter('model_path', value=str(tmp_path))],
        )
    with pytest.raises(NodeError, match='model_path is empty.*pixio-ros export'):
        PixioNode(context=ros_context)


def test_distorted_camera_info_gives_points_on_their_pixels(make_node, client, points_artifact):
    node = make_node(points_artifact)
    subscribe(client, node, ['depth', 'points'])
    d = (-0.25, 0.07, 0.001, -0.001, -0.01)
    info = camera_info_msg(d=d)
    image_pub, info_pub = input_publishers(client, node, info=info)
    frame = image_msg(random_image(12), stamp_ns=31)
    got = send_until_received(
        client, lambda: image_pub.publish(frame), frame.header, ['depth', 'points']
    )
    depth = depth_array(got['depth'])
    cloud = cloud_array(got['points'])
    xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=-1).reshape(-1, 3)
    np.testing.assert_array_equal(cloud['z'], depth)
    k = np.array(info.k).reshape(3, 3)
    projected, _ = cv2.projectPoints(
        xyz.astype(np.float64), np.zeros(3), np.zeros(3), k, np.array(d)
    )
    v, u = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH]
    np.testing.assert_allclose(
        projected.reshape(IMAGE_HEIGHT, IMAGE_WIDTH, 2), np.stack([u, v], axis=-1), atol=2e-3
    )


def test_max_rate_caps_processing(make_node, client, points_artifact):
    rate_hz = 2.0
    frames = 30
    node = make_node(points_artifact, max_rate_hz=rate_hz, **{'input_qos.reliability': 'reliable'})
    subscribe(client, node, ['embedding'])
    image_pub, _ = input_publishers(client, node)
    frame = image_msg(random_image(13))
    started = time.monotonic()
    for stamp in range(1, frames + 1):  # a 20 Hz camera
        set_header(frame, 'camera_optical', stamp)
        image_pub.publish(frame)
        time.sleep(CAMERA_PERIOD_S)
    wait_until(lambda: node.stats.snapshot().received == frames, what='all frames received')
    elapsed = time.monotonic() - started
    snapshot = node.stats.snapshot()
    # One frame may start at once, then at most one per 1 / rate seconds.
    assert 1 <= snapshot.processed <= rate_hz * elapsed + 1
    assert snapshot.dropped >= frames - snapshot.processed - 1


def test_artifact_without_depth_head_publishes_features_and_embedding_only(
    make_node, client, tiny_artifact
):
    node = make_node(tiny_artifact(head_kind='none', input_size=INPUT_SIZE))
    subscribe(client, node, ALL_OUTPUTS)
    info = camera_info_msg()
    image_pub, info_pub = input_publishers(client, node, info=info)
    frame = image_msg(random_image(14), stamp_ns=1_700_000_000_000_000_041)

    def publish():
        info_pub.publish(info)
        image_pub.publish(frame)

    got = send_until_received(client, publish, frame.header, ['features', 'embedding'])
    for topic, msg in got.items():
        assert stamp_key(msg.header) == stamp_key(frame.header), topic
    features = cloud_array(got['features'])
    assert features.shape == (IMAGE_HEIGHT // PATCH_PIXELS, IMAGE_WIDTH // PATCH_PIXELS)
    for axis in ('x', 'y', 'z'):
        assert np.isnan(features[axis]).all(), axis
    assert np.isfinite(features['feature']).all()
    assert cloud_array(got['embedding'])['embedding'].shape[-1] == EMBED_DIM
    time.sleep(QUIET_WAIT_S)  # a frame's outputs are published together, depth first
    for topic in NO_DEPTH_OUTPUTS:
        assert client.messages(topic) == [], topic
    snapshot = node.stats.snapshot()
    assert snapshot.failed == 0 and snapshot.clouds_built == 0
    assert snapshot.processed >= 1


def test_raising_a_very_low_max_rate_takes_effect_at_once(make_node, client, points_artifact):
    node = make_node(points_artifact, max_rate_hz=SLOW_RATE_HZ)
    subscribe(client, node, ['embedding'])
    image_pub, _ = input_publishers(client, node)
    frame = image_msg(random_image(15), stamp_ns=51)
    send_until_received(client, lambda: image_pub.publish(frame), frame.header, ['embedding'])
    [result] = node.set_parameters([Parameter('max_rate_hz', value=0.0)])
    assert result.successful
    set_header(frame, 'camera_optical', 52)
    # The old period is 1 / SLOW_RATE_HZ = 100 s: far longer than this wait.
    send_until_received(
        client,
        lambda: image_pub.publish(frame),
        frame.header,
        ['embedding'],
        timeout=RATE_CHANGE_WAIT_S,
    )


def latest_diagnostics(client) -> tuple[object, dict[str, str]] | None:
    """(level, values) of the newest /diagnostics status, or None."""
    arrays = client.messages('/diagnostics')
    if not arrays:
        return None
    status = arrays[-1].status[0]
    return status.level, {kv.key: kv.value for kv in status.values}


def test_invalid_camera_info_is_counted_warned_and_the_last_valid_one_kept(
    make_node, client, points_artifact
):
    """Issue 12: a non-calibration CameraInfo was ignored silently and the 3D source changed."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    node = make_node(points_artifact, diagnostics_period=0.2)
    client.subscribe(DiagnosticArray, '/diagnostics')
    subscribe(client, node, ['depth/camera_info', 'points'])
    valid = camera_info_msg()
    image_pub, info_pub = input_publishers(client, node, info=valid)
    broken = camera_info_msg()
    broken.k = [0.0] * 9  # uncalibrated: K all zeros
    frame = image_msg(random_image(13), stamp_ns=41)

    def publish():
        info_pub.publish(broken)
        image_pub.publish(frame)

    got = send_until_received(client, publish, frame.header, ['depth/camera_info', 'points'])
    np.testing.assert_allclose(got['depth/camera_info'].k, valid.k)  # the last valid one

    def warned() -> bool:
        latest = latest_diagnostics(client)
        return (
            latest is not None
            and latest[0] == DiagnosticStatus.WARN
            and int(latest[1].get('errors camera_info', 0)) > 0
        )

    wait_until(warned, what='diagnostics WARN with errors camera_info')
    _, values = latest_diagnostics(client)
    assert values['points source'] == 'camera_info'
    assert int(values['frames failed']) == 0  # the frames themselves were fine
    info_pub.publish(valid)
    wait_until(
        lambda: latest_diagnostics(client)[0] == DiagnosticStatus.OK,
        what='diagnostics back to OK after a valid CameraInfo',
    )
