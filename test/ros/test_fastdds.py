"""pixio_ros.ros.fastdds: the profile variable each ROS distro's Fast DDS reads."""

from __future__ import annotations

import pytest

from pixio_ros.ros.fastdds import PROFILE_VARIABLES, point_fast_dds_at, profile_variables


@pytest.mark.parametrize(
    ('distro', 'expected'),
    [
        ('humble', ('FASTRTPS_DEFAULT_PROFILES_FILE',)),
        ('jazzy', ('FASTRTPS_DEFAULT_PROFILES_FILE',)),
        ('kilted', ('FASTDDS_DEFAULT_PROFILES_FILE',)),
        ('rolling', ('FASTDDS_DEFAULT_PROFILES_FILE',)),
        (None, PROFILE_VARIABLES),
        ('', PROFILE_VARIABLES),
    ],
)
def test_each_distro_gets_the_variable_its_fast_dds_reads(distro, expected):
    assert profile_variables(distro) == expected


def test_a_profile_set_under_the_other_name_is_cleared():
    env = {'ROS_DISTRO': 'kilted', 'FASTRTPS_DEFAULT_PROFILES_FILE': '/old.xml'}
    assert point_fast_dds_at('/new.xml', env) == ('FASTDDS_DEFAULT_PROFILES_FILE',)
    assert env == {'ROS_DISTRO': 'kilted', 'FASTDDS_DEFAULT_PROFILES_FILE': '/new.xml'}
