"""Policy checkpoints: the head's weights in safetensors with its spec as metadata.

safetensors holds tensors and string metadata only, so loading a checkpoint can never run code
(the node loads files users pass it). The spec says how to rebuild the module around them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pixio_ros.policy.errors import PolicyError
from pixio_ros.policy.head import PolicyHead, PolicySpec

__all__ = ['FORMAT', 'load_policy', 'save_policy']

FORMAT: Final = 'pixio_policy/1'
FORMAT_KEY: Final = 'format'
SPEC_KEY: Final = 'policy_spec'


def save_policy(head: PolicyHead, path: Path, extra: Mapping[str, str] | None = None) -> None:
    """Write `head` (weights, action statistics, spec) to the safetensors file `path`."""
    from safetensors.torch import save_file

    state = {key: value.detach().cpu().contiguous() for key, value in head.state_dict().items()}
    metadata = {**(extra or {}), FORMAT_KEY: FORMAT, SPEC_KEY: json.dumps(head.spec.as_json())}
    save_file(state, str(path), metadata=metadata)


def load_policy(path: Path, device: str = 'cpu') -> PolicyHead:
    """The policy head saved at `path`, in eval mode on `device`.

    Raises:
        PolicyError: the file is missing, not safetensors, or not a policy checkpoint (a depth
            head from `train-head`, say), naming what was found.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise PolicyError(
            f'policy {path} does not exist; train one with `pixio-ros train-policy DATASET '
            '--action COLUMN -o RUN` and pass RUN/best.safetensors.'
        )
    try:
        with safe_open(str(path), framework='pt') as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise PolicyError(f'policy {path} is not a safetensors file ({err}).') from err
    if metadata.get(FORMAT_KEY) != FORMAT or SPEC_KEY not in metadata:
        raise PolicyError(
            f'{path} is not a policy checkpoint (format {metadata.get(FORMAT_KEY)!r}, expected '
            f'{FORMAT!r}); pass the best.safetensors of a `pixio-ros train-policy` run.'
        )
    try:
        head = PolicyHead(PolicySpec.from_json(json.loads(metadata[SPEC_KEY])))
        head.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise PolicyError(f'policy {path} does not match its own spec: {err}') from err
    return head.eval().to(device)
