"""Instance fields that amount to running code of the caller's choosing, and who may set them.

``environment`` reaches the backend's process (``LD_PRELOAD=/tmp/x.so`` loads any library into
it) and ``extra_args`` its command line (a chat template, a grammar or a log file to write
anywhere llamactl's user can): whoever sets them runs code as llamactl's user. With auth on,
setting either to anything non-empty needs the admin role; clearing them does not.
"""

from __future__ import annotations

from llamactl.errors import Forbidden
from llamactl.security.roles import allows
from llamactl.security.service import Principal

POWERFUL_FIELDS = ("environment", "extra_args")


def check_powerful_fields(principal: Principal, body: object,
                          current: object | None = None) -> None:
    """``body``: a create or update request (its ``environment`` and ``extra_args``);
    ``current``: for an update, the instance's spec (a field sent back unchanged sets
    nothing, so an operator's edit form may send what it read)."""
    if allows(principal.role, "admin"):
        return
    for name in POWERFUL_FIELDS:
        value = getattr(body, name)
        if value and (current is None or value != getattr(current, name)):
            raise Forbidden(f"Setting {name} needs the admin role; you are {principal.role}",
                            f"{name}: only an admin may set it (it decides what the backend "
                            "process runs)")
