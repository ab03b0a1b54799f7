"""`pixio-ros features` on bags written here: rows, episodes, signals, dtype, bytes, errors."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Writer

from pixio_ros.cli import main
from pixio_ros.data.messages import (
    camera_info_message,
    header,
    image_message,
    msg_class,
    serialize,
    typestore,
)

BASE_NS = 1_700_000_000 * 1_000_000_000
MS = 1_000_000
IMAGE_TOPIC = '/cam/image_raw'
INFO_TOPIC = '/cam/camera_info'
HEIGHT, WIDTH = 48, 64
K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])
# Two bursts of 10 Hz frames with a 2 s pause: one bag, two episodes with --episode-gap-s 1.
FIRST_BURST_MS = [0, 100, 200, 300, 400]
SECOND_BURST_MS = [2400, 2500, 2600]
IMAGE_MS = FIRST_BURST_MS + SECOND_BURST_MS
# /cmd_vel (no header: its stamp is the log time) every 30 ms over the first burst only, so the
# second burst's frames are further than 50 ms from any command: unmatched.
CMD_MS = list(range(-20, 430, 30))
# /joint_states (header stamps) every 40 ms over both bursts.
JOINT_MS = list(range(-40, 2700, 40))
JOINTS = 3


def _cmd(t_ms: float) -> tuple[float, float]:
    return 0.5 + 0.01 * t_ms, np.sin(t_ms / 90.0)


def _joints(t_ms: float) -> np.ndarray:
    return np.array([np.cos(t_ms / (70.0 + 10 * j)) for j in range(JOINTS)])


def write_bag(
    path: Path, image_ms: list[int] = IMAGE_MS, *, seed: int = 0, second_camera: bool = False
) -> Path:
    """Colour frames, their CameraInfo, /cmd_vel (Twist) and /joint_states (JointState)."""
    store = typestore()
    rng = np.random.default_rng(seed)
    vector = msg_class('geometry_msgs/msg/Vector3')
    twist = msg_class('geometry_msgs/msg/Twist')
    joint_state = msg_class('sensor_msgs/msg/JointState')
    with Writer(path, version=Writer.VERSION_LATEST) as writer:
        image = writer.add_connection(IMAGE_TOPIC, 'sensor_msgs/msg/Image', typestore=store)
        info = writer.add_connection(INFO_TOPIC, 'sensor_msgs/msg/CameraInfo', typestore=store)
        cmd = writer.add_connection('/cmd_vel', 'geometry_msgs/msg/Twist', typestore=store)
        joints = writer.add_connection(
            '/joint_states', 'sensor_msgs/msg/JointState', typestore=store
        )
        writer.write(
            info, BASE_NS, serialize(camera_info_message(K, HEIGHT, WIDTH, BASE_NS, 'cam'))
        )
        for t in image_ms:
            rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            stamp = BASE_NS + t * MS
            writer.write(image, stamp + MS, serialize(image_message(rgb, 'rgb8', stamp, 'cam')))
        for t in CMD_MS:
            linear_x, angular_z = _cmd(t)
            msg = twist(
                linear=vector(x=linear_x, y=0.0, z=0.0), angular=vector(x=0.0, y=0.0, z=angular_z)
            )
            writer.write(cmd, BASE_NS + t * MS, serialize(msg))
        for t in JOINT_MS:
            position = _joints(t)
            msg = joint_state(
                header=header(BASE_NS + t * MS, 'base'),
                name=[f'j{j}' for j in range(JOINTS)],
                position=position,
                velocity=-position,
                effort=np.zeros(0),
            )
            writer.write(joints, BASE_NS + t * MS + 3 * MS, serialize(msg))
        if second_camera:
            left = writer.add_connection('/left/image', 'sensor_msgs/msg/Image', typestore=store)
            rgb = np.zeros((8, 8, 3), np.uint8)
            writer.write(left, BASE_NS, serialize(image_message(rgb, 'rgb8', BASE_NS, 'left')))
    return path


@pytest.fixture(scope='module')
def artifact(tiny_artifact) -> Path:
    return tiny_artifact('depth', (64, 96))


@pytest.fixture(scope='module')
def bag(tmp_path_factory) -> Path:
    return write_bag(tmp_path_factory.mktemp('features_bag') / 'demo')


def features(bag_paths: list[Path], artifact: Path, out: Path, *options: str) -> int:
    return main(
        ['features', *map(str, bag_paths), '--model', str(artifact), '-o', str(out), *options]
    )


def load(out: Path) -> dict:
    """Every column as one numpy array, plus the run description under 'info'."""
    import datasets

    dataset = datasets.load_from_disk(str(out)).with_format('numpy', dtype=None)  # keep dtypes
    return {**dataset[:], 'info': json.loads(dataset.info.description), 'rows': len(dataset)}


SIGNALS = ('--with', '/cmd_vel:linear.x,angular.z', '--with', '/joint_states:position')


DATASET_OPTIONS = (*SIGNALS, '--episode-gap-s', '1', '--with-depth')


@pytest.fixture(scope='module')
def dataset_run(tmp_path_factory, bag, artifact) -> tuple[Path, str]:
    """The dataset of `bag` with both signals, episodes split, depth; and what was printed."""
    out = tmp_path_factory.mktemp('features_out') / 'ds'
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert features([bag], artifact, out, *DATASET_OPTIONS) == 0
    return out, printed.getvalue()


@pytest.fixture(scope='module')
def dataset_dir(dataset_run) -> Path:
    return dataset_run[0]


def test_one_row_per_frame_in_stamp_order_with_episodes_split_at_the_pause(dataset_dir, capsys):
    rows = load(dataset_dir)
    assert rows['rows'] == len(IMAGE_MS)
    assert rows['timestamp_ns'].tolist() == [BASE_NS + t * MS for t in IMAGE_MS]
    assert rows['episode_index'].tolist() == [0] * 5 + [1] * 3
    assert rows['frame_index'].tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert rows['features'].shape == (8, 4, 6, 64) and rows['features'].dtype == np.float32
    assert rows['xyz'].shape == (8, 4, 6, 3) and np.isfinite(rows['xyz']).all()  # CameraInfo found
    assert rows['embedding'].shape == (8, 64)
    assert rows['depth'].shape == (8, HEIGHT, WIDTH)
    info = rows['info']
    assert info['counts'] == {'frames': 8, 'episodes': 2, 'unmatched': 3, 'skipped': 0}
    assert info['bags'][0]['camera_info_topic'] == INFO_TOPIC
    assert info['artifact']['sha256']


def test_signals_equal_an_independent_interpolation_and_far_frames_are_unmatched(dataset_dir):
    rows = load(dataset_dir)
    frames = np.array(IMAGE_MS, dtype=np.float64)

    def expected(message_ms: list[int], values: np.ndarray) -> np.ndarray:
        times = np.array(message_ms, dtype=np.float64)
        out = np.interp(frames, times, values)
        nearest = np.array([min(abs(t - m) for m in message_ms) for t in IMAGE_MS])
        return np.where(nearest <= 50, out, np.nan)

    # The code under test works in nanoseconds, this in milliseconds: equal to rounding (1e-12),
    # NaN exactly where the nearest message is more than 50 ms away.
    def check(actual: np.ndarray, wanted: np.ndarray) -> None:
        assert np.array_equal(np.isnan(actual), np.isnan(wanted))
        np.testing.assert_allclose(actual, wanted, rtol=1e-12, atol=1e-15)

    linear = np.array([_cmd(t)[0] for t in CMD_MS])
    angular = np.array([_cmd(t)[1] for t in CMD_MS])
    joints = np.stack([_joints(t) for t in JOINT_MS])
    check(rows['cmd_vel:linear.x'], expected(CMD_MS, linear))
    check(rows['cmd_vel:angular.z'], expected(CMD_MS, angular))
    joint_columns = np.stack([expected(JOINT_MS, joints[:, j]) for j in range(JOINTS)], axis=1)
    check(rows['joint_states:position'], joint_columns)
    assert rows['matched'].tolist() == [True] * 5 + [False] * 3
    assert np.isnan(rows['cmd_vel:linear.x'][5:]).all()


def test_the_summary_is_one_line_with_frames_episodes_unmatched_and_rate(dataset_run):
    lines = dataset_run[1].strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('features: 8 frames, 2 episodes, 3 unmatched, ')
    assert 'frames/s' in lines[0]


def test_two_bags_are_two_episodes_and_float16_is_the_float32_rounded(tmp_path, bag, artifact):
    other = write_bag(tmp_path / 'other', FIRST_BURST_MS, seed=1)
    full, half = tmp_path / 'f32', tmp_path / 'f16'
    assert features([bag, other], artifact, full) == 0
    assert features([bag, other], artifact, half, '--features-dtype', 'float16') == 0
    f32, f16 = load(full), load(half)
    assert f32['episode_index'].tolist() == [0] * 8 + [1] * 5
    assert f16['features'].dtype == np.float16
    np.testing.assert_array_equal(f16['features'], f32['features'].astype(np.float16))
    np.testing.assert_array_equal(f16['embedding'], f32['embedding'])
    np.testing.assert_array_equal(f16['xyz'], f32['xyz'])


def test_reruns_are_byte_identical_and_an_existing_out_is_refused(tmp_path, bag, artifact, capsys):
    first, second = tmp_path / 'a', tmp_path / 'b'
    assert features([bag], artifact, first, *SIGNALS) == 0
    assert features([bag], artifact, second, *SIGNALS) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    before = {name: (first / name).read_bytes() for name in names}
    capsys.readouterr()
    assert features([bag], artifact, first) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'exists already' in err[0] and '--force' in err[0]
    assert {name: (first / name).read_bytes() for name in names} == before
    assert features([bag], artifact, first, '--force') == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a', 'b']  # no staging left


def _not_a_bag(tmp_path: Path) -> Path:
    path = tmp_path / 'notes.bag'
    path.write_text('not a bag')
    return path


@pytest.mark.parametrize(
    ('make_input', 'options', 'message'),
    [
        (lambda tmp: tmp / 'absent', (), 'does not exist'),
        (_not_a_bag, (), 'cannot read bag'),
        (None, ('--image-topic', '/nope'), '--image-topic /nope is not in bag'),
        (None, ('--with', '/odom:twist.linear.x'), '--with /odom is not in bag'),
        (None, ('--with', '/cmd_vel:linear.w'), "has no field 'w' there; its fields are: x, y, z"),
        (None, ('--with', '/joint_states:name'), 'choose a field that holds a number'),
        (None, ('--with', '/cmd_vel'), 'needs TOPIC:FIELD'),
        (None, ('--camera-info-topic', IMAGE_TOPIC), 'has type sensor_msgs/msg/Image'),
        (None, ('--format', 'lerobot'), 'requires torch < 2.12'),
        (None, ('--batch-size', '0'), '--batch-size 0 must be 1 or more'),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path, bag, artifact, capsys, make_input, options, message
):
    source = bag if make_input is None else make_input(tmp_path)
    out = tmp_path / 'out'
    capsys.readouterr()
    assert features([source], artifact, out, *options) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith('pixio-ros features: error: ') and message in err[0], err[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.out')]


def test_a_bag_with_several_colour_topics_asks_for_image_topic(tmp_path, artifact, capsys):
    from pixio_ros.data.sample_bag import SampleBagSpec, write_sample_bag

    sample = write_sample_bag(tmp_path / 'sample', SampleBagSpec(frames=1, height=16, width=16))
    assert features([sample], artifact, tmp_path / 'out') == 0  # raw + its /compressed copy: one
    two = write_bag(tmp_path / 'two', [0, 100], second_camera=True)
    capsys.readouterr()
    assert features([two], artifact, tmp_path / 'out2') == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        'has several colour image topics (/cam/image_raw, /left/image); pass --image-topic TOPIC.'
    )


LOADER = """
import sys
import datasets, torch
ds = datasets.load_from_disk(sys.argv[1]).with_format('torch')
batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
assert 'pixio_ros' not in sys.modules
print(tuple(batch['features'].shape), tuple(batch['xyz'].shape), tuple(batch['embedding'].shape),
      tuple(batch['joint_states:position'].shape), batch['features'].dtype, len(ds))
"""


def test_the_dataset_loads_with_datasets_and_torch_alone(dataset_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, '-c', LOADER, str(dataset_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository root, so `import pixio_ros` could not even resolve
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        '(4,',
        '4,',
        '6,',
        '64)',
        '(4,',
        '4,',
        '6,',
        '3)',
        '(4,',
        '64)',
        '(4,',
        '3)',
        'torch.float32',
        '8',
    ]


def test_rows_equal_the_feature_clouds_of_eval_write_bag(tmp_path, artifact):
    from rosbags.highlevel import AnyReader

    from pixio_ros.data.sample_bag import (
        COLOR_INFO_TOPIC,
        COLOR_TOPIC,
        DEPTH_TOPIC,
        SampleBagSpec,
        write_sample_bag,
    )
    from pixio_ros.features import decode_embedding, decode_features

    sample = write_sample_bag(tmp_path / 'scene', SampleBagSpec(frames=3, height=48, width=64))
    written = tmp_path / 'pixio.mcap'
    eval_options = ['--image-topic', COLOR_TOPIC, '--depth-topic', DEPTH_TOPIC]
    eval_options += ['--camera-info-topic', COLOR_INFO_TOPIC, '--write-bag', str(written)]
    command = ['eval', str(sample), '--model', str(artifact), '--out', str(tmp_path / 'eval')]
    assert main([*command, *eval_options]) == 0
    options = ('--image-topic', COLOR_TOPIC, '--camera-info-topic', COLOR_INFO_TOPIC)
    assert features([sample], artifact, tmp_path / 'ds', *options) == 0
    rows = load(tmp_path / 'ds')
    row_of = {int(stamp): index for index, stamp in enumerate(rows['timestamp_ns'])}
    compared = 0
    with AnyReader([written]) as reader:
        for connection, _, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            if connection.topic == '/pixio/features':
                grid = decode_features(msg)
                assert np.array_equal(grid.features, rows['features'][row_of[stamp]])
                assert np.array_equal(grid.xyz, rows['xyz'][row_of[stamp]], equal_nan=True)
                compared += 1
            elif connection.topic == '/pixio/embedding':
                assert np.array_equal(decode_embedding(msg), rows['embedding'][row_of[stamp]])
                compared += 1
    assert compared == 2 * 3
    assert np.isfinite(rows['xyz']).all()


def test_compressed_frames_are_read_and_a_corrupt_one_is_skipped_and_counted(
    tmp_path, artifact, capsys
):
    import cv2

    from pixio_ros.data.messages import compressed_image_message

    path = tmp_path / 'jpeg'
    store = typestore()
    rng = np.random.default_rng(3)
    with Writer(path, version=Writer.VERSION_LATEST) as writer:
        conn = writer.add_connection(
            '/cam/image/compressed', 'sensor_msgs/msg/CompressedImage', typestore=store
        )
        for index, t in enumerate(FIRST_BURST_MS):
            rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            data = cv2.imencode('.jpg', rgb)[1].tobytes() if index != 2 else b'\xff\xd8 broken'
            stamp = BASE_NS + t * MS
            writer.write(conn, stamp, serialize(compressed_image_message(data, stamp, 'cam')))
    capsys.readouterr()
    assert features([path], artifact, tmp_path / 'ds') == 0
    assert '4 frames, 1 episodes, 0 unmatched, 1 skipped (undecodable)' in capsys.readouterr().out
    rows = load(tmp_path / 'ds')
    assert rows['frame_index'].tolist() == [0, 1, 2, 3]
    skipped_stamp = BASE_NS + FIRST_BURST_MS[2] * MS
    assert skipped_stamp not in rows['timestamp_ns'].tolist()
    assert rows['info']['counts']['skipped'] == 1
    assert np.isnan(rows['xyz']).all()  # no CameraInfo and a depth head: NaN, as the node


def test_batches_give_the_rows_of_single_frames_to_rounding(tmp_path, bag, artifact, dataset_dir):
    options = (*DATASET_OPTIONS, '--batch-size', '3')
    assert features([bag], artifact, tmp_path / 'three', *options) == 0
    single, batched = load(dataset_dir), load(tmp_path / 'three')  # 8 frames: 3 + 3 + 2
    assert batched['timestamp_ns'].tolist() == single['timestamp_ns'].tolist()
    for column in ('features', 'embedding', 'xyz', 'depth', 'cmd_vel:linear.x', 'matched'):
        np.testing.assert_allclose(batched[column], single[column], rtol=1e-5, atol=1e-5)
    assert batched['info']['batch_size'] == 3


def test_a_failure_mid_run_leaves_the_old_out_and_no_staging(tmp_path, bag, artifact, capsys):
    small = write_bag(tmp_path / 'small', [0, 100], seed=4)
    out = tmp_path / 'out'
    assert features([small], artifact, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other_size = tmp_path / 'other_size'
    store = typestore()
    with Writer(other_size, version=Writer.VERSION_LATEST) as writer:
        conn = writer.add_connection(IMAGE_TOPIC, 'sensor_msgs/msg/Image', typestore=store)
        rgb = np.zeros((24, 32, 3), np.uint8)
        writer.write(conn, BASE_NS, serialize(image_message(rgb, 'rgb8', BASE_NS, 'cam')))
    capsys.readouterr()
    code = features([small, other_size], artifact, out, '--with-depth', '--force')
    errors = [line for line in capsys.readouterr().err.splitlines() if 'error:' in line]
    assert code == 1 and len(errors) == 1, errors  # after the progress bar: one error line
    assert errors[0].endswith(
        f'in {other_size} is 32x24, the first was 64x48; --with-depth needs one image size: '
        'pass --depth-resolution input.'
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['other_size', 'out', 'small']
    args = ('--with-depth', '--depth-resolution', 'input', '--force')
    assert features([small, other_size], artifact, out, *args) == 0
    assert load(out)['depth'].shape == (3, 64, 96)  # the artifact's input size
