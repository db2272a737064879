"""Rotating the hubs' tls-crypt-v2 server keys with no flag day: three steps, each published
and pulled before the next.

A hub holds one server key and unwraps every node's client key with it: it cannot accept two
generations at once. So the nodes hold both first, and the hubs move in one restart each:

1. introduce: every node gets a client key for each hub's next server key, beside the one it
   uses, and a second `<connection>` block that uses it (each node restarts once, as for a
   renewal). The hubs do not change.
2. switch: each hub takes its next server key (a restart). Before it restarts, its agent
   tells the connected nodes to move to their next block (`client-kill ID RESTART,[N]`), so
   they reconnect with the new key at once instead of after server-poll-timeout.
3. retire: every node keeps only the new key (each restarts once).

The server keys are derived by hub name and generation (pki/tlscrypt.py) from the admins'
secret, and the next generation from a new one (next_tls_crypt_v2_key in
secrets/mesh.sops.yaml, from introduce until retire, when it replaces the old): neither a
hub's stolen key nor a stolen admin secret says anything of the keys that come after the
rotation. This file holds the generation and the step."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from vpcmesh.errors import VpcmeshError
from vpcmesh.model.layout import TC2_STATE
from vpcmesh.model.snapshot import Snapshot

INTRODUCED, SWITCHED = "introduced", "switched"
_TIME = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Tc2State:
    generation: int = 0  # of the server keys in use (before a switch) or retired to
    step: str | None = None  # INTRODUCED, SWITCHED, or None: no rotation under way
    since: dt.datetime | None = None  # when the last step was taken; None: never rotated

    @property
    def server_generation(self) -> int:
        return self.generation + 1 if self.step == SWITCHED else self.generation

    @property
    def client_generations(self) -> tuple[int, ...]:
        """The client keys a node holds for each hub: the current one first."""
        return (self.generation, self.generation + 1) if self.step else (self.generation,)

    def to_bytes(self) -> bytes:
        data: dict[str, object] = {"generation": self.generation}
        if self.step:
            data["step"] = self.step
        if self.since is not None:
            data["since"] = self.since.strftime(_TIME)
        return (json.dumps(data, sort_keys=True) + "\n").encode()


def server_token(generation: int) -> str:
    """How a node's secrets name (readably) a hub's server key of this generation."""
    return "server" if generation == 0 else f"server@{generation}"


def client_token(hub: str, generation: int) -> str:
    return hub if generation == 0 else f"{hub}@{generation}"


def read_tc2(snap: Snapshot) -> Tc2State:
    if not snap.is_file(TC2_STATE):
        return Tc2State()
    try:
        data = json.loads(snap.read(TC2_STATE))
        generation, step = data["generation"], data.get("step")
        since = dt.datetime.strptime(data["since"], _TIME).replace(tzinfo=dt.timezone.utc)
        if type(generation) is not int or generation < 0 or step not in (None, INTRODUCED,
                                                                          SWITCHED):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise VpcmeshError.at(TC2_STATE, "not a vpcmesh tls-crypt-v2 rotation state"
                                         " (generation, step, since); restore it from git"
                                         ) from None
    return Tc2State(generation, step, since)
