"""What each instance can do (issue 31), as its backend tells from its spec and model file.

Asked for every /v1 request that names the instance (the capability it needs), and for
/v1/models and the instance's JSON: worked out once per version of the instance (its
``updated_at``) and kept here by name (a weak key would make a weak reference on every
request), so a request reads a dict. The model file's metadata is read through the app's
``MemoryEstimator`` (once per file version).
"""

from __future__ import annotations

from datetime import datetime

from llamactl.backends import backend_named
from llamactl.backends.base import ModelAbilities
from llamactl.supervisor.owner import InstanceOwner
from llamactl.supervisor.pending_models import pull_of

# name -> (the instance's updated_at it was worked out for, its abilities); an instance made
# again under a deleted one's name has another updated_at.
# Issue 33: an instance whose model is still being pulled is worked out again once it is there.
_KNOWN: dict[str, tuple[tuple[datetime, bool], ModelAbilities]] = {}


def abilities_of(owner: InstanceOwner) -> ModelAbilities:
    record = owner.record
    version = (record.updated_at, pull_of(owner) is None)
    cached = _KNOWN.get(record.name)
    if cached is not None and cached[0] == version:
        return cached[1]
    found = backend_named(record.spec.backend).abilities(record.spec, owner.estimator)
    _KNOWN[record.name] = (version, found)
    return found


def abilities_json(owner: InstanceOwner) -> dict[str, object]:
    """The two fields /v1/models entries and the instance's JSON carry."""
    found = abilities_of(owner)
    return {"context_length": found.context_length,
            "capabilities": list(found.capabilities)}
