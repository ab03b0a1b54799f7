"""Scale alignment, the edge gate, scan and points/obstacles through pixio_node over Fast DDS.

The node runs as its own process on an artifact whose depth is the rendered room's exact depth
divided by 1.3 (`coded_depth`); a LiDAR-like cloud of the room (noise, dropouts, outliers) in
a frame 10 cm above the camera is the reference. Every expected value is computed here from
the renderer's depth and the camera model, not with the package's own functions.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from cloud_reader import cloud_array
from coded_depth import (
    ROOM_PERIOD_NS,
    ROOM_SIZE,
    ROOM_START_NS,
    coded_depth,
    coded_depth_artifact,
    depth_to_coded_rgb,
    room_truth,
    write_room_bag,
)
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_helpers import WAIT_S, Client, set_header, wait_until
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2, PointField

from pixio_ros.data.bag import BagReader
from pixio_ros.data.scene import build_scene, camera_path, realistic_camera
from pixio_ros.ros.node_process import NodeProcess
from pixio_ros.ros.player import BagPlayer

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
HEIGHT, WIDTH = 48, 64
MIS_SCALE = 1.3
CAMERA = realistic_camera(HEIGHT, WIDTH)
CAMERA_HEIGHT_M, PITCH = 1.2, 0.2  # camera_path(0, ...): 1.2 m up, tilted 0.2 rad down
GRADIENT = 0.05
# LiDAR frame (x forward, y left, z up) 10 cm above the optical centre: optical = R p + t.
LIDAR_TO_OPTICAL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
LIDAR_OFFSET = np.array([0.0, -0.1, 0.0])
# (qx, qy, qz, qw) of LIDAR_TO_OPTICAL, worked out by hand: a rotation by 120 degrees about
# (1, -1, 1) / sqrt(3).
LIDAR_QUATERNION = (0.5, -0.5, 0.5, 0.5)
FRAME_ID = 'camera_optical_frame'
ATTEMPTS = 10
TRY_S = 2.0
RESEND_S = 0.25


def rendered_room() -> tuple[np.ndarray, np.ndarray]:
    """The room's exact depth (metres) and the image that codes it."""
    _, depth = build_scene(0).render(camera_path(0, 60), CAMERA)
    return depth, depth_to_coded_rgb(depth)


def camera_info() -> CameraInfo:
    info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model='plumb_bob', d=[0.0] * 5)
    info.k = CAMERA.k.reshape(-1).tolist()
    info.r = np.eye(3).reshape(-1).tolist()
    info.p = np.hstack([CAMERA.k, np.zeros((3, 1))]).reshape(-1).tolist()
    info.header.frame_id = FRAME_ID
    return info


def lidar_cloud(depth: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(N, 3) LiDAR-frame points of random pixels: 1 % noise, 20 % dropouts, 10 % outliers."""
    rng = np.random.default_rng(seed)
    v = rng.integers(0, HEIGHT, count)
    u = rng.integers(0, WIDTH, count)
    z = depth[v, u] * (1 + rng.normal(0, 0.01, count))
    junk = rng.random(count) < 0.1
    z[junk] *= rng.uniform(0.3, 3.0, junk.sum())
    keep = rng.random(count) >= 0.2
    optical = np.stack(
        [(u - CAMERA.cx) * z / CAMERA.fx, (v - CAMERA.cy) * z / CAMERA.fy, z], axis=1
    )[keep]
    return (optical - LIDAR_OFFSET) @ LIDAR_TO_OPTICAL  # R^T (p - t), row-wise


def cloud_msg(points: np.ndarray, stamp_ns: int) -> PointCloud2:
    msg = PointCloud2(height=1, width=len(points), point_step=12, row_step=12 * len(points))
    msg.fields = [
        PointField(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate('xyz')
    ]
    msg.is_dense = True
    msg.data = points.astype('<f4').tobytes()
    set_header(msg, 'lidar', stamp_ns)
    return msg


def image_msg(rgb: np.ndarray, stamp_ns: int) -> Image:
    msg = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=3 * WIDTH)
    msg.data = rgb.tobytes()
    set_header(msg, FRAME_ID, stamp_ns)
    return msg


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def values_of(array: DiagnosticArray) -> dict[str, str]:
    return {kv.key: kv.value for kv in array.status[0].values}


@pytest.fixture(scope='module')
def aligned_node(tmp_path_factory):
    directory = tmp_path_factory.mktemp('aligned_node')
    artifact = coded_depth_artifact(
        directory / 'coded.ts', factor=1 / MIS_SCALE, input_size=(HEIGHT, WIDTH)
    )
    parameters = {
        'model_path': str(artifact),
        'device': 'cpu',
        'warmup_runs': 0,
        'diagnostics_period': 0.2,
        'align.mode': 'scale',
        'align.min_points': 50,
        'align.max_gap_ms': 50.0,
        'align.extrinsic': [str(value) for value in (*LIDAR_OFFSET, *LIDAR_QUATERNION)],
        'points.max_depth_gradient': GRADIENT,
        'navigation.camera_height': CAMERA_HEIGHT_M,
        'navigation.camera_pitch': PITCH,
        'navigation.obstacle_stride': 1,
        'navigation.scan_rows': 3,
        'navigation.range_max': 20.0,
    }
    with NodeProcess(directory / 'node.log', parameters=parameters) as node:
        yield node
    assert 'Traceback' not in node.log.read_text(), node.tail(40)


@pytest.fixture(scope='module')
def talker(module_context):
    client = Client(module_context, name='pixio_alignment_test_client')
    for topic, kind in (
        ('depth', Image),
        ('depth/alignment', DiagnosticArray),
        ('scan', LaserScan),
        ('points', PointCloud2),
        ('points/obstacles', PointCloud2),
        ('/diagnostics', DiagnosticArray),
    ):
        client.subscribe(kind, topic)
    publishers = {
        'image': client.node.create_publisher(Image, 'image', RELIABLE),
        'camera_info': client.node.create_publisher(CameraInfo, 'camera_info', RELIABLE),
        'sparse_points': client.node.create_publisher(PointCloud2, 'sparse_points', RELIABLE),
        'sparse_depth': client.node.create_publisher(Image, 'sparse_depth', RELIABLE),
    }
    try:
        yield client, publishers
    finally:
        client.close()


def by_stamp(client: Client, topic: str, stamp: int):
    return next((m for m in client.messages(topic) if stamp_of(m) == stamp), None)


def run_until(talker, node, rgb, reference, accept, topics, first_stamp: int) -> dict:
    """Publish `reference(stamp)` then the frame at `stamp` until `accept` takes its outputs.

    The reference and the image travel on different topics, so the node may take a frame
    before its reference has arrived; each try uses a new stamp.
    """
    client, publishers = talker
    for publisher in publishers.values():
        wait_until(
            lambda p=publisher: node.running and p.get_subscription_count() > 0,
            timeout=3 * WAIT_S,
            what=f'pixio_node subscribing {publisher.topic_name}\n{node.tail()}',
        )
    found: dict = {}
    for attempt in range(ATTEMPTS):
        stamp = first_stamp + attempt * 1_000_000
        publishers['camera_info'].publish(camera_info())
        made = reference(stamp)
        if made is not None:
            publishers[made[0]].publish(made[1])
        frame = image_msg(rgb, stamp)
        deadline = time.monotonic() + TRY_S
        while time.monotonic() < deadline:
            publishers['image'].publish(frame)
            found = {topic: by_stamp(client, topic, stamp) for topic in topics}
            if all(found.values()):
                if accept(found):
                    return found
                break
            time.sleep(RESEND_S)
    missing = [topic for topic, msg in found.items() if msg is None]
    pytest.fail(f'no accepted {topics} after {ATTEMPTS} tries (missing {missing}):\n{node.tail()}')


def test_node_recovers_the_scale_and_publishes_navigation_outputs(aligned_node, talker):
    depth, rgb = rendered_room()
    truth = coded_depth(depth)
    got = run_until(
        talker,
        aligned_node,
        rgb,
        lambda stamp: ('sparse_points', cloud_msg(lidar_cloud(depth, 1500, stamp), stamp)),
        lambda found: found['depth/alignment'].status[0].level == DiagnosticStatus.OK,
        ('depth/alignment', 'depth', 'scan', 'points', 'points/obstacles'),
        5_000_000_000,
    )
    values = values_of(got['depth/alignment'])
    assert float(values['scale']) == pytest.approx(MIS_SCALE, rel=0.01)
    assert int(values['pairs']) > 1000

    published = np.frombuffer(bytes(got['depth'].data), '<f4').reshape(HEIGHT, WIDTH)
    before = np.mean(np.abs(truth / MIS_SCALE - truth) / truth)
    after = np.mean(np.abs(published - truth) / truth)
    assert before == pytest.approx(1 - 1 / MIS_SCALE, rel=1e-3)
    assert after < 0.01

    # Flying pixels (a depth off both row or both column neighbours by > 5 %) have no point.
    z32 = published  # float32, as the node compares
    flying = np.zeros(z32.shape, dtype=bool)
    for axis in (0, 1):
        pad = [(1, 1) if a == axis else (0, 0) for a in (0, 1)]
        padded = np.pad(z32, pad, constant_values=np.nan)
        previous = padded[:-2] if axis == 0 else padded[:, :-2]
        following = padded[2:] if axis == 0 else padded[:, 2:]
        with np.errstate(invalid='ignore'):
            jump = np.fmin(np.abs(z32 - previous), np.abs(z32 - following))
            flying |= jump > np.float32(GRADIENT) * z32
    z = published.astype(np.float64)
    cloud = cloud_array(got['points'])
    np.testing.assert_array_equal(np.isnan(cloud['z']), flying)

    # The scan: rows 29.5 - fy tan(0.2) +- 1, nearest hypot(x, z) per bearing bin.
    scan = got['scan']
    assert scan.header.frame_id == 'camera_frame'
    centre = CAMERA.cy - CAMERA.fy * math.tan(PITCH)
    first = math.floor(centre - 1 + 0.5)
    u = np.arange(WIDTH)
    bearing = -np.arctan((u - CAMERA.cx) / CAMERA.fx)
    assert scan.angle_min == pytest.approx(bearing.min(), abs=1e-6)
    assert scan.angle_max == pytest.approx(bearing.max(), abs=1e-6)
    expected = np.full(WIDTH, np.inf)
    band = np.where(flying, np.nan, z)[first : first + 3]
    for column in range(WIDTH):
        slope = (column - CAMERA.cx) / CAMERA.fx
        ranges = band[:, column] * math.hypot(slope, 1.0)
        ranges = ranges[np.isfinite(ranges) & (ranges >= 0.1) & (ranges <= 20.0)]
        index = int(round((bearing[column] - scan.angle_min) / scan.angle_increment))
        expected[index] = min([expected[index], *ranges])
    np.testing.assert_allclose(np.array(scan.ranges), expected, rtol=1e-5)

    # Obstacles: every unflagged pixel whose height above the floor is in 0.05..2 m.
    vv, uu = np.mgrid[0:HEIGHT, 0:WIDTH]
    x = (uu - CAMERA.cx) / CAMERA.fx * z
    y = (vv - CAMERA.cy) / CAMERA.fy * z
    height = CAMERA_HEIGHT_M - (y * math.cos(PITCH) + z * math.sin(PITCH))
    distance = np.sqrt(x * x + y * y + z * z)
    inside = ~flying & (height >= 0.05) & (height <= 2.0) & (distance >= 0.1) & (distance <= 20.0)
    # float32 (node) and float64 (here) may disagree for a point within 1e-4 m of an edge.
    near_edge = ~flying & (
        (np.abs(height - 0.05) < 1e-4)
        | (np.abs(height - 2.0) < 1e-4)
        | (np.abs(distance - 0.1) < 1e-4)
        | (np.abs(distance - 20.0) < 1e-4)
    )
    obstacles = cloud_array(got['points/obstacles'])
    assert obstacles.shape[0] == 1
    assert abs(obstacles.shape[1] - int(inside.sum())) <= int(near_edge.sum())
    if not near_edge.any():
        np.testing.assert_allclose(np.sort(obstacles['z'][0]), np.sort(z[inside]), rtol=1e-6)
    # The room's floor (true height 0 at the true depth) is no obstacle.
    true_y = (vv - CAMERA.cy) / CAMERA.fy * truth
    true_height = CAMERA_HEIGHT_M - (true_y * math.cos(PITCH) + truth * math.sin(PITCH))
    assert not (inside & (np.abs(true_height) < 0.02)).any()


def test_problems_keep_the_last_scale_and_are_counted(aligned_node, talker):
    client, _ = talker
    depth, rgb = rendered_room()
    truth = coded_depth(depth)
    cases = [
        ('stale', lambda stamp: None, 'more than align.max_gap_ms'),
        (
            'too few pairs',
            lambda stamp: ('sparse_points', cloud_msg(lidar_cloud(depth, 20, stamp), stamp)),
            'fewer than align.min_points=50',
        ),
        (
            'mismatched size',
            lambda stamp: ('sparse_depth', depth_image(np.full((30, 50), 2.0), stamp)),
            'not an integer multiple',
        ),
    ]
    for number, (_, reference, message) in enumerate(cases, start=1):
        got = run_until(
            talker,
            aligned_node,
            rgb,
            reference,
            lambda found, m=message: m in found['depth/alignment'].status[0].message,
            ('depth/alignment', 'depth'),
            number * 100_000_000_000,
        )
        status = got['depth/alignment'].status[0]
        assert status.level == DiagnosticStatus.WARN
        values = values_of(got['depth/alignment'])
        assert values['kept last scale'] == 'true'
        assert float(values['scale']) == pytest.approx(MIS_SCALE, rel=0.01)
        published = np.frombuffer(bytes(got['depth'].data), '<f4').reshape(HEIGHT, WIDTH)
        assert np.mean(np.abs(published - truth) / truth) < 0.01

    # A bad extrinsic is refused at the parameter service and counted; the one in force stays.
    service = client.node.create_client(SetParameters, '/pixio/set_parameters')
    wait_until(service.service_is_ready, what='set_parameters service')
    request = SetParameters.Request(
        parameters=[
            ParameterMsg(
                name='align.extrinsic',
                value=ParameterValue(
                    type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=[1.0, 2.0, 3.0]
                ),
            )
        ]
    )
    future = service.call_async(request)
    wait_until(future.done, what='set_parameters response')
    [result] = future.result().results
    assert not result.successful and 'has 3 values' in result.reason

    def latest() -> dict[str, str] | None:
        for array in reversed(client.messages('/diagnostics')):
            values = values_of(array)
            if int(values.get('errors alignment', 0)) >= 3 and 'errors parameter' in values:
                return values
        return None

    wait_until(lambda: latest() is not None, what='diagnostics counting the problems')
    values = latest()
    assert float(values['alignment scale']) == pytest.approx(MIS_SCALE, rel=0.01)


def depth_image(depth: np.ndarray, stamp_ns: int) -> Image:
    msg = Image(height=depth.shape[0], width=depth.shape[1], encoding='32FC1')
    msg.step = 4 * depth.shape[1]
    msg.data = depth.astype('<f4').tobytes()
    set_header(msg, FRAME_ID, stamp_ns)
    return msg


BAG_FRAMES = 5


def test_a_played_bag_is_aligned_frame_by_frame(tmp_path, module_context):
    """The synthetic proof: a bag whose head is 1/1.3 off, played into the node."""
    bag = write_room_bag(tmp_path / 'room', frames=BAG_FRAMES)
    artifact = coded_depth_artifact(
        tmp_path / 'coded.ts', factor=1 / MIS_SCALE, input_size=ROOM_SIZE
    )
    parameters = {
        'model_path': str(artifact),
        'device': 'cpu',
        'warmup_runs': 2,  # TorchScript optimises on its first calls: slow frames get replaced
        'align.mode': 'scale',
        'input_qos.reliability': 'reliable',
        'input_qos.depth': 10,
    }
    remappings = {
        'image': '/image',
        'camera_info': '/camera_info',
        'sparse_points': '/lidar/points',
        '__ns': '/played',
    }
    client = Client(module_context, name='pixio_bag_alignment_client')
    player_node = client.node
    reliable = QoSProfile(depth=BAG_FRAMES * 2, reliability=ReliabilityPolicy.RELIABLE)
    client.subscribe(Image, '/played/depth', reliable)
    client.subscribe(DiagnosticArray, '/played/depth/alignment', reliable)
    try:
        with NodeProcess(
            tmp_path / 'node.log', parameters=parameters, remappings=remappings
        ) as node:
            with BagReader(bag) as reader:
                player = BagPlayer(
                    player_node, reader, ['/lidar/points', '/camera_info', '/image'], rate=0.5
                )
                assert player.wait_for_subscribers(list(player.topics), timeout_s=3 * WAIT_S), (
                    node.tail()
                )
                wait_until(
                    lambda: client.node.count_publishers('/played/depth/alignment') > 0,
                    what='the node publishing depth/alignment',
                )
                assert player.play() == 3 * BAG_FRAMES
            last = ROOM_START_NS + (BAG_FRAMES - 1) * ROOM_PERIOD_NS
            wait_until(
                lambda: by_stamp(client, '/played/depth', last) is not None,
                what=f'depth of the last frame\n{node.tail()}',
            )
    finally:
        client.close()
    aligned = 0
    for index in range(BAG_FRAMES):
        stamp = ROOM_START_NS + index * ROOM_PERIOD_NS
        status = by_stamp(client, '/played/depth/alignment', stamp)
        depth_msg = by_stamp(client, '/played/depth', stamp)
        if status is None or status.status[0].level != DiagnosticStatus.OK:
            continue  # a frame the node took before its reference arrived keeps the last scale
        aligned += 1
        assert float(values_of(status)['scale']) == pytest.approx(MIS_SCALE, rel=0.01)
        truth = room_truth(index, BAG_FRAMES)
        published = np.frombuffer(bytes(depth_msg.data), '<f4').reshape(ROOM_SIZE)
        assert np.mean(np.abs(truth / MIS_SCALE - truth) / truth) > 0.2  # the head's error
        assert np.mean(np.abs(published - truth) / truth) < 0.01
    # The node keeps only the newest frame, so a slow moment drops one (counted); a frame taken
    # before its reference arrived keeps the last scale. Most frames must be aligned.
    assert aligned >= BAG_FRAMES - 2
