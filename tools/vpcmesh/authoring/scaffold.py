"""What makes a folder a mesh repository of its own (`vpcmesh init` of a new folder): the
Makefile, the pinned vpcmesh, the CI workflows for GitHub and Gitea, pre-commit hooks and
the schemas the YAML files name. A copy of the vpcmesh repository (the template) has its
own and gets none of these."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from vpcmesh import __version__

HOME = "https://github.com/vpcmesh/vpcmesh"  # where vpcmesh is published, tagged v<version>
WORKFLOWS = ("pull-request.yml", "publish.yml")


@dataclass(frozen=True)
class ToolPin:
    """The vpcmesh a mesh repository installs: a git repository and a tag or commit."""

    repo: str = HOME
    rev: str = f"v{__version__}"


def is_template(root: Path) -> bool:
    """A copy of the vpcmesh repository, whose mesh sits beside the tool's own code."""
    return (root / "tools/vpcmesh/schemas").is_dir()


def schema_dir(root: Path) -> str:
    """Where a file in mesh/ or nodes/ finds the schemas, as its `$schema` comment says."""
    return "../tools/vpcmesh/schemas" if is_template(root) else "../schemas"


def _text(rel: str) -> str:
    return resources.files("vpcmesh.authoring").joinpath(f"scaffold/{rel}").read_text()


def workflow(name: str) -> str:
    return _text(f"workflows/{name}")


def files(name: str, pin: ToolPin) -> dict[str, bytes]:
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)

    def render(rel: str) -> bytes:
        return env.from_string(_text(rel)).render(name=name, tool=pin).encode()

    schemas = resources.files("vpcmesh").joinpath("schemas")
    out = {"Makefile": _text("Makefile").encode(),
           "requirements.txt": render("requirements.txt.j2"),
           ".pre-commit-config.yaml": render("pre-commit-config.yaml.j2"),
           "README.md": render("README.md.j2")}
    out.update({f".github/workflows/{w}": workflow(w).encode() for w in WORKFLOWS})
    out.update({f"schemas/{s}.schema.json": schemas.joinpath(f"{s}.schema.json").read_bytes()
                for s in ("mesh", "node")})
    return out
