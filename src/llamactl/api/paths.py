"""The ``{name:instance}`` path parameter of ``/api/instances/{name}...``, and the
``{model_id:model_id}`` one of ``/api/models/{id}``.

Any name but the batch operations' own path segments (``instances.models.RESERVED_NAMES``):
``/api/instances/start-all`` is one resource, answering POST, and its ``Allow`` header says
so; without this, ``GET /api/instances/start-all`` was a lookup of an instance named
``start-all`` and the path answered GET, PUT and DELETE too (found by schemathesis).
"""

from __future__ import annotations

from starlette.convertors import StringConvertor, register_url_convertor

from llamactl.instances.models import RESERVED_NAMES

INSTANCE = "instance"
INSTANCE_PARAMETER = "{name:instance}"


class InstanceNameConvertor(StringConvertor):
    regex = "(?!(?:%s)(?:/|$))[^/]+" % "|".join(sorted(RESERVED_NAMES))  # noqa: UP031


register_url_convertor(INSTANCE, InstanceNameConvertor())


# Issue 33: ``/api/models/{id}`` (a model's path under its folder, slashes and all), but not
# ``/api/models/pull`` and ``/api/models/pulls...``, whose Allow header would name DELETE.
MODEL = "model_id"
MODEL_PARAMETER = "{model_id:model_id}"


class ModelIdConvertor(StringConvertor):
    regex = r"(?!pulls?(?:/|$)).+"


register_url_convertor(MODEL, ModelIdConvertor())
