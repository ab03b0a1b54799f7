"""The policy node's settings (pure): validation, Twist mapping, and the README's table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pixio_ros.ros.policy_settings import POLICY_PARAMETERS, PolicySettings, twist_components
from pixio_ros.ros.settings import SettingsError

README = Path(__file__).resolve().parents[2] / 'README.md'


def test_readme_lists_every_parameter_with_its_default():
    text = README.read_text()
    section = text[text.index('**The policy node.**') : text.index('## A synthetic RGB-D bag')]
    rows = dict(re.findall(r'^\| `(\w+)` \| `([^`]*)` \|', section, flags=re.M))
    expected = {
        spec.name: repr(spec.default) if spec.default == '' else str(spec.default)
        for spec in POLICY_PARAMETERS
    }
    assert rows == expected


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'max_feature_age_ms': -1.0}, r'max_feature_age_ms=-1.0 is outside 0..60000'),
        ({'output_type': 'twists'}, 'is not one of twist, twist_stamped, float32_array'),
        ({'max_age_ms': 5.0}, 'not a parameter of pixio_policy_node'),
        ({'input_depth': 2.5}, 'expected an integer'),
    ],
)
def test_bad_values_are_refused_naming_the_fix(changes, message):
    with pytest.raises(SettingsError, match=message):
        PolicySettings.from_parameters(changes)


def test_actions_map_onto_twist_fields():
    assert twist_components(('cmd_vel:linear.x', 'cmd_vel:angular.z')) == (
        ('linear', 'x'),
        ('angular', 'z'),
    )
    with pytest.raises(SettingsError, match='set output_type to float32_array'):
        twist_components(('joint_states:position[0]',))
    with pytest.raises(SettingsError, match='one action per Twist field'):
        twist_components(('a:angular.z', 'b:angular.z'))
