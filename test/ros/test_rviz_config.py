"""config/pixio.rviz against a real node: every display shows a topic the node has, of its type.

RViz names its topics relative to the node, and the launch file starts it with
`launch_arguments.rviz_view`. Here a real PixioNode is started with the namespace and remappings
the launch file gives it, and the display topics are resolved by rcl itself (a subscription
created as rviz2 would be: in rviz_view's namespace, with its remappings). So renaming an output,
or changing how launch namespaces it, fails here instead of leaving a blank RViz panel.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_test_helpers import INPUT_SIZE
from sensor_msgs.msg import Image, PointCloud2

from pixio_ros.data.sample_bag import FRAME_ID
from pixio_ros.ros.launch_arguments import RVIZ_CONFIG, input_remappings, rviz_view
from pixio_ros.ros.node import PixioNode
from pixio_ros.wire import COLORED_TOPIC, FEATURES_TOPIC, POINTS_TOPIC, RGB

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'config' / RVIZ_CONFIG
LAUNCH_FILE = REPO / 'launch' / 'pixio.launch.py'
# The message type each RViz display class subscribes to (rviz_default_plugins).
DISPLAY_TYPES: dict[str, type] = {
    'rviz_default_plugins/Image': Image,
    'rviz_default_plugins/PointCloud2': PointCloud2,
}
QOS_DEPTH = 1


def displays(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The displays of a Displays list, groups opened."""
    found = []
    for display in tree:
        found += displays(display['Displays']) if 'Displays' in display else [display]
    return found


def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def topic_displays() -> list[dict[str, Any]]:
    return [d for d in displays(config()['Visualization Manager']['Displays']) if 'Topic' in d]


def launch_default(argument: str, keyword: str = 'default_value') -> str:
    """The default_value (or another keyword) of one DeclareLaunchArgument in the launch file."""
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, 'id', None) == 'DeclareLaunchArgument'
            and node.args[0].value == argument
        ):
            default = next(k.value for k in node.keywords if k.arg == keyword)
            assert isinstance(default, ast.Constant)
            return default.value
    raise AssertionError(f'launch file declares no {argument}')


def remap_args(remappings: list[tuple[str, str]]) -> list[str]:
    args = ['--ros-args']
    for source, target in remappings:
        args += ['-r', f'{source}:={target}']
    return args


def test_config_parses_and_names_the_views_outputs():
    shown = {d['Topic']['Value']: d for d in topic_displays()}
    assert set(shown) == {'image', COLORED_TOPIC, POINTS_TOPIC, FEATURES_TOPIC}
    assert all(d['Class'] in DISPLAY_TYPES for d in shown.values())
    # `points` coloured by the packed rgb field RViz's RGB8 transformer reads.
    assert shown[POINTS_TOPIC]['Color Transformer'] == 'RGB8' and RGB == 'rgb'


def test_fixed_frame_is_the_cameras_frame_id():
    """The frame of the demo's camera (the sample bag) unless launch's rviz_frame says another."""
    assert config()['Visualization Manager']['Global Options']['Fixed Frame'] == FRAME_ID
    assert f"pixio.rviz's {FRAME_ID}" in launch_default('rviz_frame', 'description')


CASES = {
    'launch defaults': (None, None, ()),
    'namespace and camera': ('/robot', '/robot/camera/color', ()),
    'several cameras': ('pixio', '/', ('front', 'left')),
}


@pytest.mark.parametrize('case', CASES)
def test_every_display_shows_a_topic_of_the_node_with_the_displays_type(
    case, ros_context, tiny_artifact
):
    namespace, camera, cameras = CASES[case]
    namespace = launch_default('namespace') if namespace is None else namespace
    camera = (launch_default('camera') if camera is None else camera).rstrip('/')
    overrides = [
        Parameter('model_path', value=str(tiny_artifact('points', INPUT_SIZE))),
        Parameter('device', value='cpu'),
        Parameter('warmup_runs', value=0),
    ]
    if cameras:
        overrides.append(Parameter('cameras', value=list(cameras)))
    node = PixioNode(
        context=ros_context,
        namespace=namespace,
        parameter_overrides=overrides,
        cli_args=remap_args(input_remappings(camera, cameras)),
    )
    view = rviz_view(namespace, camera, cameras, config=str(CONFIG))
    rviz = Node(
        'rviz2',
        context=ros_context,
        namespace=view.namespace,
        cli_args=remap_args(view.remappings),
    )
    try:
        published = {pub.topic_name: pub.msg_type for pub in node.publishers}
        subscribed = {sub.topic_name: sub.msg_type for sub in node.subscriptions}
        first = f'{cameras[0]}/' if cameras else ''
        prefix = f'/{namespace.strip("/")}/' if namespace.strip('/') else '/'
        for display in topic_displays():
            kind = DISPLAY_TYPES[display['Class']]
            relative = display['Topic']['Value']
            resolved = rviz.create_subscription(kind, relative, lambda _: None, QOS_DEPTH)
            topic = resolved.topic_name
            if relative == 'image':
                # The input image: the topic the node itself reads its frames from.
                assert subscribed.get(topic) is kind, (topic, subscribed)
                assert topic == f'{camera}/{first}image_raw'
            else:
                assert published.get(topic) is kind, (display['Name'], topic, published)
                assert topic == f'{prefix}{first}{relative}'
    finally:
        rviz.destroy_node()
        node.destroy_node()
