"""An example policy on Pixio features: dataset, head, training, scoring. Copy it and adapt it.

`FeatureDataset` reads what `pixio-ros features` writes; `PolicyHead` is a small attention-pooling
head trained by behaviour cloning (`train_policy`, the `pixio-ros train-policy` command) and run
on the live `features` / `embedding` topics by `pixio_policy_node`.
"""

from pixio_ros.policy.checkpoint import load_policy, save_policy
from pixio_ros.policy.config import PolicyConfig
from pixio_ros.policy.dataset import FeatureDataset, FeatureTensors, split_episodes
from pixio_ros.policy.errors import PolicyError
from pixio_ros.policy.head import AttentionPool, PolicyHead, PolicySpec
from pixio_ros.policy.scoring import PolicyScore, predict, score_actions, score_policy
from pixio_ros.policy.trainer import PolicyResult, PolicyTrainer, train_policy

__all__ = [
    'AttentionPool',
    'FeatureDataset',
    'FeatureTensors',
    'PolicyConfig',
    'PolicyError',
    'PolicyHead',
    'PolicyResult',
    'PolicyScore',
    'PolicySpec',
    'PolicyTrainer',
    'load_policy',
    'predict',
    'save_policy',
    'score_actions',
    'score_policy',
    'split_episodes',
    'train_policy',
]
