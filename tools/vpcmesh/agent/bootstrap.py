"""`vpcmesh agent install`: what a new VM needs to pull its bundle on a timer."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from vpcmesh.agent import METRICS_FILE, system
from vpcmesh.agent.sources import Credentials, open_source
from vpcmesh.agent.state import STATE_DIR
from vpcmesh.bundle.keychain import load_keys
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import replace_file
from vpcmesh.secrets import agekeys

CONFIG_DIR = "etc/vpcmesh"
SERVICE_FILE, TIMER_FILE = ("etc/systemd/system/vpcmesh-pull.service",
                            "etc/systemd/system/vpcmesh-pull.timer")
CRON_FILE = "etc/cron.d/vpcmesh-pull"
UNIT_FILES = (SERVICE_FILE, TIMER_FILE, CRON_FILE)  # what uninstall removes


@dataclass(frozen=True)
class AgentSetup:
    hostname: str
    source: str
    ref: str
    trust_key: Path
    root: Path = Path("/")
    cron: bool = False
    restart_cmd: str | None = None
    metrics: str | None = METRICS_FILE
    token_file: Path | None = None  # git+https: read on every pull, so it can be rotated
    header_file: Path | None = None  # static https


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


def _unit(name: str, context: dict[str, str]) -> str:
    # string.Template, not Jinja2: a fresh VM installs the agent without the compiler's
    # libraries, and these files have three placeholders.
    text = resources.files("vpcmesh.agent").joinpath(f"units/{name}").read_text()
    return Template(text).substitute(context)


def ensure_key(root: Path) -> tuple[str, bool]:
    """This VM's age identity, made if missing: (its recipient, whether it was made now).
    Kept by every later install, so a recipient given out before (for `vpcmesh import`, or
    a node file) stays valid."""
    config = root / CONFIG_DIR
    config.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = config / "age.key"
    created = not key_file.exists()
    if created:
        secret, _ = agekeys.new_identity()
        replace_file(key_file, f"# created by vpcmesh agent\n{secret}\n".encode(), mode=0o600)
    try:
        return agekeys.recipient_of(key_file.read_text()), created
    except (OSError, UnicodeDecodeError, ValueError):
        raise VpcmeshError.at(str(key_file), "holds no valid age identity; move it away and"
                                             " run 'vpcmesh agent key' again") from None


def install(setup: AgentSetup) -> Installed:
    config = setup.root / CONFIG_DIR
    try:
        trust = setup.trust_key.read_bytes()
    except OSError as exc:
        raise VpcmeshError.at(str(setup.trust_key), f"cannot read: {exc.strerror}") from None
    if b"BEGIN PUBLIC KEY" not in trust:
        raise VpcmeshError.at(str(setup.trust_key), "not a PEM public key; use the mesh's"
                                                    " mesh/signing.pub")
    try:
        load_keys(trust, str(setup.trust_key))  # one key, or a set while a rotation runs
    except VpcmeshError:
        raise VpcmeshError.at(str(setup.trust_key), "not an Ed25519 public key; use the"
                                                    " mesh's mesh/signing.pub") from None
    for option, value in (("--source", setup.source), ("--ref", setup.ref),
                          ("--restart-cmd", setup.restart_cmd or "")):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise VpcmeshError.at(option, "has a control character (a newline would add a"
                                          " line to the unit or the crontab)")
        if option != "--restart-cmd" and value.startswith("-"):
            raise VpcmeshError.at(option, f"{value!r} starts with '-'")
    # The same checks a pull makes, now, rather than on the first timer run.
    credentials = Credentials(setup.token_file, setup.header_file)
    open_source(setup.source, setup.ref, setup.root / STATE_DIR / "source.git", credentials)
    recipient, created = ensure_key(setup.root)
    key_file = config / "age.key"
    written = [str(key_file)] if created else []
    if replace_file(config / "signing.pub", trust):
        written.append(str(config / "signing.pub"))
    args = [*shlex.split(_executable()), "pull", "--once", "--hostname", setup.hostname,
            "--source", setup.source, "--ref", setup.ref, "--age-key", "/" + CONFIG_DIR
            + "/age.key", "--trust-key", "/" + CONFIG_DIR + "/signing.pub"]
    for option, path in (("--token-file", setup.token_file),
                         ("--header-file", setup.header_file)):
        if path is not None:
            args += [option, str(path.absolute())]
    if setup.restart_cmd:
        args += ["--restart-cmd", setup.restart_cmd]
    if setup.metrics:
        args += ["--metrics", setup.metrics]
    # What the unit or cron line runs, escaped for that file: systemd expands % and $ (and
    # reads C escapes) in ExecStart, cron turns % into a newline.
    command = shlex.join(args)
    systemd = command.replace("\\", "\\\\").replace("%", "%%").replace("$", "$$")
    context = {"hostname": setup.hostname, "interval": "2min",
               "command": command.replace("%", "\\%") if setup.cron else systemd}
    units = ({CRON_FILE: "vpcmesh-pull.cron"} if setup.cron else
             {SERVICE_FILE: "vpcmesh-pull.service", TIMER_FILE: "vpcmesh-pull.timer"})
    for rel, name in units.items():
        if replace_file(setup.root / rel, _unit(name, context).encode()):
            written.append(str(setup.root / rel))
    if not setup.cron and setup.root == system.REAL_ROOT and system.has_systemd():
        system.daemon_reload()
        system.systemctl("enable", "--now", "vpcmesh-pull.timer")
    return Installed(recipient, tuple(written), created)
