"""`vpcmesh agent install`: what a new VM needs to pull its bundle on a timer."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vpcmesh import agekeys
from vpcmesh.errors import VpcmeshError
from vpcmesh.output import replace_file
from vpcmesh.render import environment

CONFIG_DIR = "etc/vpcmesh"


@dataclass(frozen=True)
class AgentSetup:
    hostname: str
    source: str
    ref: str
    trust_key: Path
    root: Path = Path("/")
    cron: bool = False
    restart_cmd: str | None = None


@dataclass(frozen=True)
class Installed:
    recipient: str
    written: tuple[str, ...]
    key_created: bool


def _executable() -> str:
    # The console script beside this Python (a virtualenv's bin/), else PATH's, else -m.
    beside = Path(sys.executable).parent / "vpcmesh"
    if beside.is_file():
        return str(beside)
    return shutil.which("vpcmesh") or f"{sys.executable} -m vpcmesh"


def install(setup: AgentSetup) -> Installed:
    config = setup.root / CONFIG_DIR
    try:
        trust = setup.trust_key.read_bytes()
    except OSError as exc:
        raise VpcmeshError.at(str(setup.trust_key), f"cannot read: {exc.strerror}") from None
    if b"BEGIN PUBLIC KEY" not in trust:
        raise VpcmeshError.at(str(setup.trust_key), "not a PEM public key; use the mesh's"
                                                    " mesh/signing.pub")
    config.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = config / "age.key"
    created = not key_file.exists()
    if created:
        secret, _ = agekeys.new_identity()
        replace_file(key_file, f"# created by vpcmesh agent install\n{secret}\n".encode(),
                     mode=0o600)
    recipient = agekeys.recipient_of(key_file.read_text())
    written = [str(key_file)] if created else []
    if replace_file(config / "signing.pub", trust):
        written.append(str(config / "signing.pub"))
    args = [*shlex.split(_executable()), "pull", "--once", "--hostname", setup.hostname,
            "--source", setup.source, "--ref", setup.ref, "--age-key", "/" + CONFIG_DIR
            + "/age.key", "--trust-key", "/" + CONFIG_DIR + "/signing.pub"]
    if setup.restart_cmd:
        args += ["--restart-cmd", setup.restart_cmd]
    context = {"hostname": setup.hostname, "command": shlex.join(args), "interval": "2min"}
    units = ({"etc/cron.d/vpcmesh-pull": "vpcmesh-pull.cron.j2"} if setup.cron else
             {"etc/systemd/system/vpcmesh-pull.service": "vpcmesh-pull.service.j2",
              "etc/systemd/system/vpcmesh-pull.timer": "vpcmesh-pull.timer.j2"})
    for rel, template in units.items():
        text = environment().get_template(template).render(**context)
        if replace_file(setup.root / rel, text.encode()):
            written.append(str(setup.root / rel))
    if not setup.cron and setup.root == Path("/") and shutil.which("systemctl"):
        subprocess.run(["systemctl", "daemon-reload"], check=False)
        subprocess.run(["systemctl", "enable", "--now", "vpcmesh-pull.timer"], check=False)
    return Installed(recipient, tuple(written), created)
