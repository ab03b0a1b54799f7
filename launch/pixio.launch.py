"""Launch pixio_node: `ros2 launch pixio_ros pixio.launch.py model:=/path/model.ts camera:=/camera`.

Thin on purpose: everything here is also reachable as
`pixio_node --ros-args --params-file config/pixio.yaml -p model_path:=... -r __ns:=/ns
-r image:=/camera/image_raw -r camera_info:=/camera/camera_info` with the Fast DDS profile
variables exported.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pixio_ros.ros.launch_arguments import parse_bool_argument

PACKAGE = 'pixio_ros'
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')


def _node(context, *args, **kwargs):
    """The node, its parameters and remappings, resolved from the launch arguments."""
    camera = LaunchConfiguration('camera').perform(context).rstrip('/')
    overrides = {}
    compressed_text = LaunchConfiguration('compressed').perform(context)
    compressed = parse_bool_argument('compressed', compressed_text)
    if compressed is not None:
        overrides['compressed_input'] = compressed
    model = LaunchConfiguration('model').perform(context)
    if model:
        overrides['model_path'] = model
    device = LaunchConfiguration('device').perform(context)
    if device:
        overrides['device'] = device
    remappings = [
        ('image', f'{camera}/image_raw'),
        ('image/compressed', f'{camera}/image_raw/compressed'),
        ('camera_info', f'{camera}/camera_info'),
    ]
    return [
        Node(
            package=PACKAGE,
            executable='pixio_node',
            name='pixio',
            namespace=LaunchConfiguration('namespace'),
            parameters=[LaunchConfiguration('params_file'), overrides],
            remappings=remappings,
            output='screen',
        )
    ]


def generate_launch_description():
    """Arguments: model, params_file, namespace, camera, compressed, device."""
    share = get_package_share_directory(PACKAGE)
    # A profile the user chose under either name wins, for both Fast DDS generations.
    chosen = next((os.environ[name] for name in PROFILE_VARIABLES if os.environ.get(name)), None)
    profile = chosen or os.path.join(share, 'config', 'fastdds_shm.xml')
    profile_actions = [
        SetEnvironmentVariable(name, profile)
        for name in PROFILE_VARIABLES
        if not os.environ.get(name)
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                'model',
                default_value='',
                description='artifact from `pixio-ros export` (overrides '
                'model_path in params_file)',
            ),
            DeclareLaunchArgument(
                'params_file',
                default_value=os.path.join(share, 'config', 'pixio.yaml'),
                description='node parameters (YAML)',
            ),
            DeclareLaunchArgument(
                'namespace', default_value='', description='namespace of the node and its outputs'
            ),
            DeclareLaunchArgument(
                'camera',
                default_value='/camera',
                description='camera prefix: subscribes <camera>/image_raw '
                '(or .../compressed) and <camera>/camera_info',
            ),
            DeclareLaunchArgument(
                'compressed',
                default_value='',
                description='true/false (also 1/0, yes/no): subscribe to the '
                "compressed (JPEG/PNG) image ('' = params_file)",
            ),
            DeclareLaunchArgument(
                'device',
                default_value='',
                description="auto, cpu, cuda or cuda:N ('' = params_file)",
            ),
            *profile_actions,
            OpaqueFunction(function=_node),
        ]
    )
