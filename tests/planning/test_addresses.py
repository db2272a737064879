from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from vpcmesh.compiler.pipeline import load
from vpcmesh.model.loading import load_inventory
from vpcmesh.model.state import State, read_state
from vpcmesh.planning.addresses import allocate

from conftest import snap


def _spoke(repo: Path, name: str, extra: str = "") -> None:
    template = (repo / "nodes/spoke-2.yaml").read_text()
    text = template.replace("spoke-2", name).replace("172.22.0", f"172.{40 + len(name)}.0")
    (repo / f"nodes/{name}.yaml").write_text(text + extra)


def _addresses(repo: Path, state: State) -> dict[str, str]:
    return {h: str(a) for h, a in allocate(load_inventory(snap(repo)), state).items()}


def test_hub_gets_the_first_address_and_new_nodes_the_lowest_free(base_repo: Path) -> None:
    (base_repo / "mesh/state.yaml").unlink()
    assert _addresses(base_repo, State()) == {
        "hub-1": "10.8.0.1", "spoke-1": "10.8.0.2", "spoke-2": "10.8.0.3"}


def test_adding_a_node_that_sorts_first_moves_nobody(base_repo: Path) -> None:
    state = read_state(snap(base_repo))
    _spoke(base_repo, "aaa")
    assert _addresses(base_repo, state) == {
        "aaa": "10.8.0.4", "hub-1": "10.8.0.1", "spoke-1": "10.8.0.2", "spoke-2": "10.8.0.3"}


def test_removing_a_node_moves_nobody_and_frees_its_address(base_repo: Path) -> None:
    state = read_state(snap(base_repo))
    (base_repo / "nodes/spoke-1.yaml").unlink()
    assert _addresses(base_repo, state) == {"hub-1": "10.8.0.1", "spoke-2": "10.8.0.3"}
    _spoke(base_repo, "zzz")
    assert _addresses(base_repo, state)["zzz"] == "10.8.0.2"


def test_a_pinned_address_is_kept_and_skipped_by_allocation(base_repo: Path) -> None:
    (base_repo / "mesh/state.yaml").unlink()
    _spoke(base_repo, "aaa", "vpn_address: 10.8.0.2\n")
    assert _addresses(base_repo, State()) == {
        "aaa": "10.8.0.2", "hub-1": "10.8.0.1", "spoke-1": "10.8.0.3", "spoke-2": "10.8.0.4"}


def test_a_stale_state_entry_outside_the_network_is_reallocated(base_repo: Path) -> None:
    state = State(addresses={"spoke-1": IPv4Address("10.9.9.9")})
    assert _addresses(base_repo, state)["spoke-1"] == "10.8.0.2"


def test_plan_is_deterministic(base_repo: Path) -> None:
    plans = [load(snap(base_repo)).plan for _ in range(2)]
    assert plans[0].addresses == plans[1].addresses
    assert [n.hostname for n in plans[0].nodes] == ["hub-1", "spoke-1", "spoke-2"]
