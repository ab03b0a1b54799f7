"""Two processes exchange 640x480 rgb8 images through rclpy and Fast DDS (shipped profile).

One transfer per module, three checks: the bytes, shared memory with the profile's segment size
(Fast DDS drops a whole profile holding an element it does not know: 512 KiB segments, 640x480
images over UDP), and every UDP socket of both processes on loopback (the profile's interface
whitelist). The shipped profiles are also checked against the XSD of the installed Fast DDS. Runs
on Jazzy (Fast DDS 2.14) and, through `make test-kilted`, on Kilted (Fast DDS 3.2).
"""

from __future__ import annotations

import ipaddress
import os
import statistics
import subprocess
import sys
import sysconfig
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from image_stream_publisher import HEIGHT, TOPIC, WIDTH, frame_pixels

FRAMES = 30
CONFIG = Path(__file__).resolve().parent.parent / 'config'
# The profile test/conftest.py points every participant of the test run at.
LOOPBACK_PROFILE = CONFIG / 'fastdds_shm_localhost.xml'
PUBLISHER = Path(__file__).with_name('image_stream_publisher.py')
# The profile schema each Fast DDS generation installs under <prefix>/share.
SCHEMAS = ('fastdds/fastdds_profiles.xsd', 'fastRTPS_profiles.xsd')
XS = '{http://www.w3.org/2001/XMLSchema}'
# Data segments are /dev/shm/fastrtps_<guid> (Fast DDS 2) or fastdds_<guid> (Fast DDS 3); the
# fast*_port<N> files are the per-port queues.
SEGMENT_PREFIXES = ('fastrtps_', 'fastdds_')


@dataclass(frozen=True)
class Transfer:
    """What one cross-process run left behind."""

    received: list  # (sensor_msgs/Image, arrival time ns)
    publisher_log: str
    segments: dict[str, int]  # data segments mapped by the subscriber process -> bytes
    udp_addresses: dict[str, list[str]]  # 'subscriber' / 'publisher' -> local addresses


@pytest.fixture(scope='module')
def transfer() -> Transfer:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import Image

    context = Context()
    rclpy.init(context=context)
    node = Node('image_stream_subscriber', context=context)
    received: list[tuple[Image, int]] = []
    qos = QoSProfile(
        depth=FRAMES,
        history=QoSHistoryPolicy.KEEP_LAST,
        reliability=QoSReliabilityPolicy.RELIABLE,
    )
    node.create_subscription(Image, TOPIC, lambda msg: received.append((msg, time.time_ns())), qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    publisher = subprocess.Popen(
        [sys.executable, str(PUBLISHER), '--frames', str(FRAMES)],
        stderr=subprocess.PIPE,
        text=True,
    )
    segments: dict[str, int] = {}
    udp: dict[str, list[str]] = {}
    try:
        deadline = time.monotonic() + 90
        while len(received) < FRAMES and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if received and not udp and publisher.poll() is None:
                # Mid-stream, both participants alive: what they mapped and bound.
                segments = mapped_segments(os.getpid())
                udp = {
                    'subscriber': udp_local_addresses(os.getpid()),
                    'publisher': udp_local_addresses(publisher.pid),
                }
            if publisher.poll() not in (None, 0):
                break
        assert publisher.wait(timeout=30) == 0, publisher.stderr.read()
        log = publisher.stderr.read()
    finally:
        if publisher.poll() is None:
            publisher.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return Transfer(received, log, segments, udp)


@pytest.mark.timeout(120)
def test_every_frame_arrives_byte_identical_across_processes(transfer):
    received = transfer.received
    assert [msg.header.frame_id for msg, _ in received] == [f'frame_{i}' for i in range(FRAMES)]
    latencies_ms = []
    for index, (msg, arrival_ns) in enumerate(received):
        assert (msg.height, msg.width, msg.encoding, msg.step) == (HEIGHT, WIDTH, 'rgb8', WIDTH * 3)
        pixels = np.frombuffer(msg.data, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(pixels, frame_pixels(index))
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies_ms.append((arrival_ns - stamp_ns) / 1e6)
    median_ms = statistics.median(latencies_ms)
    print(f'\n640x480 rgb8 across processes: median latency {median_ms:.2f} ms')


@pytest.mark.timeout(120)
def test_fast_dds_accepts_the_profile_and_maps_its_shared_memory_segments(transfer):
    # Fast DDS logs "XMLPARSER Error" and drops the whole profile on an element it does not know.
    assert 'XMLPARSER' not in transfer.publisher_log, transfer.publisher_log
    segment_size = int(profile_text(LOOPBACK_PROFILE, 'segment_size'))
    assert segment_size >= HEIGHT * WIDTH * 3
    # The subscriber's own segment and the publisher's, which it reads the frames from; none of
    # Fast DDS's default size (a builtin SHM transport beside the profile's).
    sizes = transfer.segments
    assert len(sizes) >= 2, f'two shared-memory segments expected, mapped: {sizes}'
    assert min(sizes.values()) >= segment_size, f'segments under {segment_size} B: {sizes}'


@pytest.mark.timeout(120)
def test_every_udp_socket_of_both_processes_binds_loopback(transfer):
    assert transfer.udp_addresses['subscriber'] and transfer.udp_addresses['publisher']
    for process, addresses in transfer.udp_addresses.items():
        outside = [
            address
            for address in addresses
            if not (ipaddress.ip_address(address).is_loopback or is_multicast(address))
        ]
        assert not outside, f'{process} bound {outside} (all: {addresses})'


def test_both_profiles_differ_only_in_the_udp_interface_whitelist():
    robot = ET.parse(CONFIG / 'fastdds_shm.xml').getroot()
    local = ET.parse(LOOPBACK_PROFILE).getroot()
    for root in (robot, local):
        for descriptor in root.iter():
            for child in list(descriptor):
                if local_name(child) == 'interfaceWhiteList':
                    descriptor.remove(child)
    assert shape(robot) == shape(local)


@pytest.mark.parametrize('profile', ['fastdds_shm.xml', 'fastdds_shm_localhost.xml'])
def test_profile_uses_only_elements_the_installed_fast_dds_schema_declares(profile):
    prefixes = [sysconfig.get_paths()['data'], *os.environ.get('AMENT_PREFIX_PATH', '').split(':')]
    schemas = [Path(p, 'share', s) for p in prefixes if p for s in SCHEMAS]
    schema = next((path for path in schemas if path.is_file()), None)
    if schema is None:
        pytest.skip(f'no Fast DDS profile schema under {prefixes}')
    root = ET.parse(CONFIG / profile).getroot()
    assert undeclared_elements(root, ET.parse(schema).getroot()) == []


# --- helpers ----------------------------------------------------------------------------------


def local_name(element: ET.Element) -> str:
    """The tag without its XML namespace."""
    return element.tag.rsplit('}', 1)[-1]


def profile_text(path: Path, tag: str) -> str:
    """Text of the first `tag` element in the profile at `path`."""
    found = [e.text for e in ET.parse(path).getroot().iter() if local_name(e) == tag and e.text]
    assert found, f'no <{tag}> in {path}'
    return found[0].strip()


def shape(element: ET.Element) -> list[tuple[str, str]]:
    """(tag, text) of every element, transport ids normalised: what two profiles share."""
    return [
        (local_name(child), (child.text or '').strip().replace('_localhost', ''))
        for child in element.iter()
    ]


def undeclared_elements(profile: ET.Element, schema: ET.Element) -> list[str]:
    """Paths of the profile's elements that the XSD does not declare where they stand.

    Element names only (namespaces, order and values aside): the check that matters here, since
    Fast DDS's parser refuses a profile for an unknown element and ignores the namespace.
    """
    types = {t.get('name'): t for t in schema.findall(f'{XS}complexType')}
    roots = {e.get('name'): e for e in schema.findall(f'{XS}element')}

    def declared_children(declaration: ET.Element) -> dict[str, ET.Element]:
        content = declaration.find(f'{XS}complexType')
        if content is None:
            content = types.get(str(declaration.get('type')))
        found: dict[str, ET.Element] = {}
        pending = [] if content is None else list(content)
        while pending:
            node = pending.pop()
            if node.tag == f'{XS}element':
                found[str(node.get('name'))] = node
                continue
            if node.tag == f'{XS}extension' and node.get('base') in types:
                pending.extend(types[str(node.get('base'))])
            pending.extend(node)
        return found

    def walk(element: ET.Element, declaration: ET.Element, path: str) -> list[str]:
        allowed = declared_children(declaration)
        missing = []
        for child in element:
            name, where = local_name(child), f'{path}/{local_name(child)}'
            missing += walk(child, allowed[name], where) if name in allowed else [where]
        return missing

    name = local_name(profile)
    return walk(profile, roots[name], name) if name in roots else [name]


def mapped_segments(pid: int) -> dict[str, int]:
    """Fast DDS shared-memory data segments mapped by process `pid` -> mapped bytes."""
    sizes: dict[str, int] = {}
    for line in Path(f'/proc/{pid}/maps').read_text().splitlines():
        fields = line.split()
        name = Path(fields[-1]).name if fields[-1].startswith('/dev/shm/') else ''
        if name.startswith(SEGMENT_PREFIXES) and '_port' not in name and not name.endswith('_el'):
            start, end = (int(value, 16) for value in fields[0].split('-'))
            sizes[name] = sizes.get(name, 0) + end - start
    return sizes


def udp_local_addresses(pid: int) -> list[str]:
    """Local IP addresses of the UDP sockets (v4 and v6) that process `pid` holds."""
    inodes = set()
    for fd in Path(f'/proc/{pid}/fd').iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:[') : -1])
    addresses = []
    for table, width in (('udp', 8), ('udp6', 32)):
        for line in Path(f'/proc/{pid}/net/{table}').read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                addresses.append(proc_net_address(fields[1].split(':')[0], width))
    return addresses


def proc_net_address(hex_address: str, width: int) -> str:
    """/proc/net/udp's address (host byte order per 32-bit word, little-endian here) as text."""
    assert len(hex_address) == width
    words = [bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, width, 8)]
    return str(ipaddress.ip_address(b''.join(words)))


def is_multicast(address: str) -> bool:
    """Discovery's multicast group (239.255.0.1) is bound as such; it is not an interface."""
    return ipaddress.ip_address(address).is_multicast
