"""Instance JSON as the contract shapes it.

Listing a thousand instances must take milliseconds (bench/api.py), so the part of an
instance's JSON that only an update changes is built once per update and kept here, keyed
weakly by its owner (so it lives and dies with the instance); each answer copies it and fills
in the live fields (status, pid, stats, restarts, error). The list goes further: each
instance's serialised JSON is kept with the values it was made from, and made again only
when one of them changed (a stopped instance's never does; a running one's each second, with
its uptime), so a list of unchanged instances is one join of kept bytes. And the whole list's
bytes are kept with a key of what they were made from (instances/models.py's count of
changes, the time in whole seconds, ...): while nothing changed a list is one comparison.
"""

from __future__ import annotations

import time
import weakref
from datetime import datetime
from typing import Any

import orjson

from llamactl.api.hidden import hidden_args, hidden_environment
from llamactl.config import InstancesConfig
from llamactl.instances.models import Counted, format_time
from llamactl.supervisor.abilities import abilities_json
from llamactl.supervisor.context import Lifecycle
from llamactl.supervisor.owner import InstanceOwner
from llamactl.supervisor.pending_models import pull_json, pull_of
from llamactl.supervisor.stats import contract_stats

# name -> (its owner, what its bytes were made from, the bytes), one per secrets flag: a
# plain dict (a WeakKeyDictionary's lookup alone cost more than the rest of a list's work);
# the owner is compared, and names gone are dropped by the list (instance_list_json).
_LISTED: tuple[dict[str, tuple[InstanceOwner, tuple[Any, ...], bytes]], ...] = ({}, {})
# The last list's parts and body, by secrets flag: an unchanged list is not joined again.
_LAST_LIST: list[tuple[list[bytes], bytes] | None] = [None, None]

# The whole list's key (_list_key) and bytes, by secrets flag.
_WHOLE: list[tuple[tuple[Any, ...], bytes] | None] = [None, None]

# owner -> ((updated_at, the estimates' generation) it was built for, the settled part)
Settled = tuple[tuple[datetime, int, bool], dict[str, Any]]
_SETTLED: weakref.WeakKeyDictionary[InstanceOwner, Settled] = (
    weakref.WeakKeyDictionary())


def instance_json(owner: InstanceOwner, config: InstancesConfig, *,
                  secrets: bool) -> dict[str, Any]:
    """``secrets``: the caller is an admin, who sees environment values and secret flags'
    values in extra_args (api/hidden.py); anyone else reads them as "***"."""
    runtime = owner.record.runtime
    pid = owner.pid
    document = dict(_settled_part(owner, config))
    spec = owner.record.spec
    if not secrets and (spec.environment or spec.extra_args):
        document["environment"] = hidden_environment(spec.environment)
        document["extra_args"] = hidden_args(spec.extra_args)
    document["status"] = runtime.status
    document["pid"] = pid
    document["stats"] = contract_stats(owner.stats, pid, runtime.started_at)
    document["restart_count"] = runtime.restart_count
    document["last_error"] = runtime.last_error
    document["node"] = runtime.node
    document["sleeping"] = runtime.sleeping
    document["pull"] = pull_json(owner)
    return document


def _settled_part(owner: InstanceOwner, config: InstancesConfig) -> dict[str, Any]:
    """Everything but the live fields, in the answer's key order (live ones as None)."""
    record = owner.record
    cached = _SETTLED.get(owner)
    # GPUs found later change it; so does a model pulled after the instance was made (#33)
    version = (record.updated_at, owner.estimator.generation, pull_of(owner) is None)
    if cached is not None and cached[0] == version:
        return cached[1]
    part = _settled_document(owner, config)
    _SETTLED[owner] = (version, part)
    return part


def _settled_document(owner: InstanceOwner, config: InstancesConfig) -> dict[str, Any]:
    record = owner.record
    spec = record.spec
    life = Lifecycle.of(record, config)
    return {
        "name": spec.name,
        "status": None,
        "model_path": spec.model_path,
        "port": spec.port,
        "pid": None,
        "backend": spec.backend,
        "options": spec.options,
        "stats": None,
        "auto_restart": life.auto_restart,
        "max_restarts": life.max_restarts,
        "restart_delay": life.restart_delay,
        "on_demand_start": life.on_demand_start,
        "idle_timeout": life.idle_timeout,
        "group": spec.group,
        "environment": spec.environment,
        "extra_args": spec.extra_args,
        "aliases": spec.aliases,
        "resources": spec.resources,
        "docker": spec.docker,
        "pool": spec.pool,
        "sleep_after": spec.sleep_after,
        "sleeping": None,
        "node": None,
        "restart_count": None,
        "last_error": None,
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
        # Issue 20: computed at create and update (this part is rebuilt once per update).
        "memory_estimate": _estimate_json(owner),
        **abilities_json(owner),  # issue 31: context_length, capabilities
        "pull": None,
    }


def _estimate_json(owner: InstanceOwner) -> dict[str, int | None] | None:
    estimate = owner.estimator.estimate(owner.record.spec)
    return estimate.as_json() if estimate is not None else None


def instance_list_json(owners: list[InstanceOwner], config: InstancesConfig, *,
                       secrets: bool) -> bytes:
    """``{"instances": [...]}`` serialised: the whole kept until something it shows changed,
    each instance's bytes until its own values did."""
    now = int(time.time())
    key = _list_key(owners, config, now)
    whole = _WHOLE[secrets]
    if key is not None and whole is not None and whole[0] == key:
        return whole[1]
    body = _joined_list(owners, config, secrets, now)
    _WHOLE[secrets] = (key, body) if key is not None else None
    return body


def _list_key(owners: list[InstanceOwner], config: InstancesConfig,
              now: int) -> tuple[Any, ...] | None:
    """What the whole list is made from: every set on a spec, runtime, record or stats counts
    (pid changes with the runtime's, in the same step); the owners (one made is counted, one
    gone changes their number); the estimates' generation; the settings; the uptime's second.
    None while a model is pulled: its progress moves with none of these."""
    if InstanceOwner.holding_pulls:
        return None
    generation = owners[0].estimator.generation if owners else 0
    return (Counted.changes, len(owners), generation, id(config), now)


def _joined_list(owners: list[InstanceOwner], config: InstancesConfig, secrets: bool,
                 now: int) -> bytes:
    kept = _LISTED[secrets]
    parts = [_listed(owner, config, secrets, kept, now) for owner in owners]
    last = _LAST_LIST[secrets]
    if last is not None and parts == last[0]:  # the same bytes objects (identity first)
        return last[1]  # the same object too, so that GzipMemo's comparison is instant
    if len(kept) > len(owners):  # some were deleted (or renamed): forget them
        names = {owner.record.spec.name for owner in owners}
        for name in [name for name in kept if name not in names]:
            del kept[name]
    body = b'{"instances":[' + b",".join(parts) + b"]}"
    _LAST_LIST[secrets] = (parts, body)
    return body


def _listed(owner: InstanceOwner, config: InstancesConfig, secrets: bool,
            kept: dict[str, tuple[InstanceOwner, tuple[Any, ...], bytes]], now: int) -> bytes:
    record = owner.record
    runtime = record.runtime
    stats = owner.stats
    pid = owner.pid
    # Everything instance_json reads that can change (uptime: whole seconds since the start).
    made_from = (record.updated_at, owner.estimator.generation, runtime.status, pid,
                 runtime.restart_count, runtime.last_error, runtime.node, runtime.started_at,
                 now if pid is not None else 0,
                 stats.memory_usage, stats.cpu_usage, runtime.sleeping, pull_json(owner))
    name = record.spec.name
    cached = kept.get(name)
    if cached is not None and cached[0] is owner and cached[1] == made_from:
        return cached[2]
    data = orjson.dumps(instance_json(owner, config, secrets=secrets))
    kept[name] = (owner, made_from, data)
    return data

