"""Launch pixio_node: `ros2 launch pixio_ros pixio.launch.py model:=/path/model.ts camera:=/camera`.

Thin on purpose: everything here is also reachable as
`pixio_node --ros-args --params-file config/pixio.yaml -p model_path:=... -r __ns:=/ns
-r image:=/camera/image_raw -r camera_info:=/camera/camera_info` with the Fast DDS profile
variables exported. `cameras:=front,left` serves several cameras from one node (inputs
`<camera>/<name>/image_raw`); `lifecycle:=true` starts the managed pixio_lifecycle_node, and
`autostart:=true` configures and activates it. `rviz:=true` also starts rviz2 on
config/pixio.rviz (the first camera's input image, depth/colored, points, features), or logs that
rviz2 is not installed. `policy:=RUN/best.safetensors` also starts pixio_policy_node in the same
namespace, on the node's features and embedding, publishing `action`. The argument parsing lives
in `pixio_ros.ros.launch_arguments` (tested without launch).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from pixio_ros.ros.fastdds import PROFILE_VARIABLES, profile_variables
from pixio_ros.ros.launch_arguments import (
    RVIZ_CONFIG,
    RVIZ_EXECUTABLE,
    RVIZ_MISSING,
    RVIZ_PACKAGE,
    input_remappings,
    parse_bool_argument,
    parse_cameras_argument,
    parse_node_start,
    rviz_installed,
    rviz_view,
)

PACKAGE = 'pixio_ros'


def _actions(context, *args, **kwargs):
    """The node and, with rviz:=true, rviz2 (or one line saying it is not installed)."""
    camera = LaunchConfiguration('camera').perform(context).rstrip('/')
    cameras = parse_cameras_argument(LaunchConfiguration('cameras').perform(context))
    actions = _node(context, camera, cameras)
    if not parse_bool_argument('rviz', LaunchConfiguration('rviz').perform(context)):
        return actions
    if not rviz_installed():
        return [LogInfo(msg=RVIZ_MISSING), *actions]
    view = rviz_view(
        LaunchConfiguration('namespace').perform(context),
        camera,
        cameras or (),
        config=os.path.join(get_package_share_directory(PACKAGE), 'config', RVIZ_CONFIG),
        fixed_frame=LaunchConfiguration('rviz_frame').perform(context),
    )
    rviz = Node(
        package=RVIZ_PACKAGE,
        executable=RVIZ_EXECUTABLE,
        namespace=view.namespace,
        arguments=view.arguments,
        remappings=view.remappings,
        output='screen',
    )
    return [*actions, rviz]


def _node(context, camera, cameras):
    """The node, its parameters and remappings, resolved from the launch arguments."""
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
    if cameras is not None:
        overrides['cameras'] = list(cameras)
    start = parse_node_start(
        LaunchConfiguration('lifecycle').perform(context),
        LaunchConfiguration('autostart').perform(context),
    )
    options = {
        'package': PACKAGE,
        'name': 'pixio',
        'namespace': LaunchConfiguration('namespace'),
        'parameters': [LaunchConfiguration('params_file'), overrides],
        'remappings': input_remappings(camera, cameras or ()),
        'output': 'screen',
    }
    policy = LaunchConfiguration('policy').perform(context)
    policy_nodes = []
    if policy:
        policy_nodes.append(
            Node(
                package=PACKAGE,
                executable='pixio_policy_node',
                name='pixio_policy',
                namespace=LaunchConfiguration('namespace'),
                parameters=[{'policy_path': policy}],
                output='screen',
            )
        )
    if not start.lifecycle:
        return [Node(executable='pixio_node', **options), *policy_nodes]
    node = LifecycleNode(executable='pixio_lifecycle_node', **options)
    if not start.autostart:
        return [node, *policy_nodes]

    def transition(transition_id):
        return EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(node), transition_id=transition_id
            )
        )

    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            goal_state='inactive',
            entities=[transition(Transition.TRANSITION_ACTIVATE)],
        )
    )
    return [
        node,
        activate_when_configured,
        transition(Transition.TRANSITION_CONFIGURE),
        *policy_nodes,
    ]


def generate_launch_description():
    """The launch arguments (see each description) and the node they resolve to."""
    share = get_package_share_directory(PACKAGE)
    # A profile the user chose under either name wins; otherwise the shipped one, under the
    # variable this distro's Fast DDS reads (pixio_ros.ros.fastdds: Fast DDS 3 warns on the old).
    chosen = next((os.environ[name] for name in PROFILE_VARIABLES if os.environ.get(name)), None)
    profile = chosen or os.path.join(share, 'config', 'fastdds_shm.xml')
    profile_actions = [
        SetEnvironmentVariable(name, profile)
        for name in profile_variables(os.environ.get('ROS_DISTRO'))
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
                'cameras',
                default_value='',
                description='several cameras in one node, e.g. front,left: camera <name> is read '
                'from <camera>/<name>/image_raw and <camera>/<name>/camera_info, its outputs go '
                "under <namespace>/<name>/ ('' = params_file's cameras, remapped by hand)",
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
            DeclareLaunchArgument(
                'lifecycle',
                default_value='false',
                description='true: start the managed pixio_lifecycle_node (configure loads the '
                'model, activate starts processing)',
            ),
            DeclareLaunchArgument(
                'autostart',
                default_value='false',
                description='with lifecycle:=true, configure and activate at once',
            ),
            DeclareLaunchArgument(
                'rviz',
                default_value='false',
                description='true: also start rviz2 on config/pixio.rviz (input image, '
                'depth/colored, points, features of the first camera), if installed',
            ),
            DeclareLaunchArgument(
                'rviz_frame',
                default_value='',
                description="RViz's fixed frame: the camera's frame_id ('' = pixio.rviz's "
                'camera_color_optical_frame)',
            ),
            DeclareLaunchArgument(
                'policy',
                default_value='',
                description='policy checkpoint (RUN/best.safetensors of `pixio-ros train-policy`): '
                "also start pixio_policy_node on the node's features ('' = none)",
            ),
            *profile_actions,
            OpaqueFunction(function=_actions),
        ]
    )
