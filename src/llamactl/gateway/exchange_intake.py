"""How a ``/v1`` request comes in, before it is routed: the part of an Exchange
(gateway/exchange.py) that reads the head and a form upload's body.

``admit`` decides on the head alone (the Origin and Host rules, who calls). A JSON body is
then read whole and handed to ``Exchange.start``; a ``multipart/form-data`` body (issue 31)
streams instead: ``begin_upload``, ``upload_piece`` for each piece as read, ``upload_end``,
routed by its ``model`` field as soon as that has passed (gateway/upload.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from llamactl.backends import served_name
from llamactl.gateway.errors import GatewayError, gateway_refusal
from llamactl.gateway.routing import (
    KeyNotKnown,
    allowed_method,
    authenticate,
    authenticate_new_key,
    method_not_allowed,
    model_required,
)
from llamactl.gateway.upload import Upload
from llamactl.security.service import Principal

if TYPE_CHECKING:
    from llamactl.gateway.service import Front, Gateway
    from llamactl.supervisor.owner import InstanceOwner

log = logging.getLogger(__name__)


class RequestIntake:
    __slots__ = ("_admitting", "_principal", "_retries", "_task", "_upload")

    if TYPE_CHECKING:  # the Exchange's, which this is a part of
        gateway: Gateway
        front: Front
        method: str
        path: str
        scheme: str
        headers: list[tuple[bytes, bytes]]
        request_id: str
        finished: bool
        _principal: Principal
        _admitting: list[bytes] | None
        _task: asyncio.Task[None] | None
        _upload: Upload | None
        _name: str
        _retries: int

        def fail(self, error: GatewayError, *, reusable: bool = True) -> None: ...
        def start(self, body: bytes) -> None: ...
        def _cancelled(self) -> None: ...
        def _owner_for(self, model: str) -> InstanceOwner: ...
        def _lease_or_wait(self, owner: InstanceOwner) -> None: ...
        def _route_pool(self, pool: str, body: bytes) -> None: ...


    def admit(self) -> bool:
        """What the head alone decides, before any of the body is read: the Origin and Host
        rules (security/origin.py), then who calls. False: refused, answered, and the
        connection closes (its body is never read)."""
        try:
            gateway = self.gateway
            refusal = gateway.origin_decisions.of(gateway.origin_policy, self.scheme,
                                                  self.method, self.path, self.headers)
            if refusal is not None:
                raise gateway_refusal(refusal)
            self._principal = authenticate(self.gateway.auth, self.headers)
        except KeyNotKnown as unknown:
            self._admitting = []  # start() holds the body until the store has answered
            self._task = self.gateway.spawn(self._admit_key(unknown.key))
        except GatewayError as error:
            self.fail(error, reusable=False)
            return False
        except Exception:
            log.exception("gateway: %s %s failed (request_id=%s)", self.method, self.path,
                          self.request_id)
            self.fail(GatewayError(500, "Internal error", "server_error", "internal_error"),
                      reusable=False)
            return False
        return True

    async def _admit_key(self, key: str) -> None:
        """A key memory does not know (``llamactl keys create`` in another process may have
        made it a moment ago): asked of the store once before it is refused."""
        try:
            found: Principal | GatewayError = await authenticate_new_key(self.gateway.auth, key)
        except asyncio.CancelledError:
            self._cancelled()
            raise
        except GatewayError as error:
            found = error
        held, self._admitting, self._task = self._admitting or [], None, None
        if isinstance(found, GatewayError):
            self.fail(found, reusable=False)
        elif not self.finished:
            self._principal = found
            for body in held:
                self.start(body)
            self._route_upload()

    # a form upload
    def begin_upload(self, held: list[bytes], *, ended: bool) -> None:
        """The request's body is a multipart/form-data upload, ``held`` what was read of it
        before it began: it streams on from here."""
        try:
            self._upload = Upload(self.headers, self.front.hold_reading)
        except GatewayError as error:
            self.fail(error, reusable=False)
            return
        self._retries = 0  # a body sent on as it came cannot be sent again
        for piece in held:
            self.upload_piece(piece)
        if ended:
            self.upload_end()

    def upload_piece(self, piece: bytes) -> None:
        upload = self._upload
        if upload is not None and not self.finished:
            upload.add(piece)
            if not self._name and upload.finder.done:
                self._route_upload()

    def upload_end(self) -> None:
        if self._upload is not None and not self.finished:
            self._upload.end()
            self._route_upload()

    def _route_upload(self) -> None:
        """Route the upload once its model field has passed (or the body ended without
        one) and the caller is known; once."""
        upload = self._upload
        if (upload is None or self.finished or self._name or self._admitting is not None
                or not (upload.finder.done or upload.ended)):
            return
        try:
            allowed = allowed_method(self.path)
            if self.method != allowed or allowed != "POST":
                raise method_not_allowed(allowed)
            model = upload.finder.model
            if not model:
                raise model_required()
            if model in self.gateway.manager.pools:  # issue 32: never an instance's name
                self._route_pool(model, b"")  # its member's own name, if any: _leased's
                return
            owner = self._owner_for(model)
            served = served_name(owner.record)
            if served is not None and served != model:
                upload.rename_model(served)
            self._lease_or_wait(owner)
        except GatewayError as error:
            self.fail(error)
        except Exception:
            log.exception("gateway: %s %s failed (request_id=%s)", self.method, self.path,
                          self.request_id)
            self.fail(GatewayError(500, "Internal error", "server_error", "internal_error"))

