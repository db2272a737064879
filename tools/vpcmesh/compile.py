"""The pipeline shared by validate and render: load, check, plan."""

from __future__ import annotations

from pathlib import Path

from vpcmesh.loader import Inventory, load_inventory
from vpcmesh.plan import Plan, make_plan
from vpcmesh.state import State, read_state


def load_plan(root: Path) -> tuple[Inventory, State, Plan]:
    inventory = load_inventory(root)
    previous = read_state(root)
    return inventory, previous, make_plan(inventory, previous)
