"""The current time, which VPCMESH_NOW can set (to test expiry, or to ask "what expires by
then?")."""

from __future__ import annotations

import datetime as dt
import os

from vpcmesh.errors import VpcmeshError


def now() -> dt.datetime:
    text = os.environ.get("VPCMESH_NOW")
    if not text:
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise VpcmeshError.at("VPCMESH_NOW", f"{text!r} is not an ISO 8601 time such as"
                                             " 2027-01-31T00:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
