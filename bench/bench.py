"""vpcmesh benchmark: `make bench` (or `python bench/bench.py [--sizes 10,100,1000]`).

Generates synthetic meshes, runs each scenario as a separate `vpcmesh` process (the way a
user or CI runs it) and prints, per mesh size, the median wall time of several runs, CPU
time and peak memory, next to the targets for 1,000 nodes. It also checks what must not
happen: files rewritten or sops called on a no-op, other nodes' secrets re-encrypted."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import meshgen  # noqa: E402

from vpcmesh.secrets import sops  # noqa: E402

VPCMESH = [sys.executable, "-m", "vpcmesh"]
EASYRSA = Path("/usr/share/easy-rsa/easyrsa")


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    code: int
    stderr: str


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    start = time.perf_counter()
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
               proc.returncode, err)


def ok(result: Run, what: str) -> Run:
    if result.code != 0:
        raise SystemExit(f"{what} failed ({result.code}):\n{result.stderr}")
    return result


@dataclass
class Row:
    name: str
    target: str
    cells: dict[int, str] = field(default_factory=dict)
    verdict: str = ""


class Bench:
    def __init__(self, work: Path, sizes: list[int], repeats: int) -> None:
        self.work, self.sizes, self.repeats = work, sizes, repeats
        self.keys = work / "keys"
        self.keys.mkdir()
        self.admin_key, self.admin = meshgen.identity(self.keys, "admin")
        self.shim_log = work / "sops-calls.log"
        self.shim = work / "sops-shim"
        self.shim.write_text(f'#!/bin/sh\necho "$@" >> {self.shim_log}\n'
                             f'exec {sops.binary()} "$@"\n')
        self.shim.chmod(0o755)
        self.rows: dict[str, Row] = {}
        self.peak: dict[int, float] = {}

    def row(self, key: str, name: str, target: str) -> Row:
        return self.rows.setdefault(key, Row(name, target))

    def vpcmesh(self, repo: Path, *args: str, key: bool = True, count: bool = False) -> Run:
        env = {"SOPS_AGE_KEY_FILE": str(self.admin_key)} if key else {}
        if count:
            env["VPCMESH_SOPS"] = str(self.shim)
        result = ok(run([*VPCMESH, *args, "--repo", str(repo)], env), " ".join(args))
        self.peak[self.n] = max(self.peak.get(self.n, 0.0), result.rss_mb)
        return result

    def sops_calls(self) -> list[str]:
        lines = self.shim_log.read_text().splitlines() if self.shim_log.exists() else []
        self.shim_log.unlink(missing_ok=True)
        return [line.split()[2] for line in lines]  # after "--config /dev/null"

    def median(self, runs: list[Run]) -> Run:
        wall = statistics.median(r.wall for r in runs)
        return Run(wall, statistics.median(r.cpu for r in runs),
                   max(r.rss_mb for r in runs), 0, "")

    # --- scenarios -------------------------------------------------------------------

    def first_compile(self) -> Path:
        runs, repo = [], None
        for i in range(self.repeats):
            repo = meshgen.generate(self.work / f"first-{self.n}-{i}", self.n, self.admin,
                                    self.keys)
            runs.append(self.vpcmesh(repo, "render"))
        floor = self.sops_floor()
        m = self.median(runs)
        self.row("first", "first compile (issue, encrypt, render, sign)", "<= 1.3x sops floor"
                 ).cells[self.n] = f"{m.wall:.2f} s ({m.wall / floor:.2f}x floor)"
        self.row("floor", "  sops floor: one encrypt call per node", "").cells[self.n] = \
            f"{floor:.2f} s"
        self.first_wall = m.wall
        assert repo is not None
        return repo

    def sops_floor(self) -> float:
        payload = {"files": {"node.key": "x" * 241, "tls.key": "y" * 636},
                   "cert_sha256_unencrypted": "0" * 64}
        recipients = [self.admin, self.admin]
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                list(pool.map(lambda _: sops.encrypt(payload, recipients, "x"), range(self.n)))
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def noop(self, repo: Path) -> None:
        build = repo / "build"
        snapshot = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in build.rglob("*")}
        runs = [self.vpcmesh(repo, "render", count=True) for _ in range(self.repeats + 2)]
        calls = self.sops_calls()
        rewritten = sum(1 for p, s in snapshot.items()
                        if not p.exists() or (p.stat().st_ino, p.stat().st_mtime_ns) != s)
        m = self.median(runs)
        self.row("noop", "no-op re-render", "<= 1 s, 0 rewritten, 0 sops").cells[self.n] = \
            f"{m.wall:.2f} s, {rewritten} rewritten, {len(calls)} sops"
        cold = []
        for _ in range(self.repeats):
            for name in (".vpcmesh-stamp.json", ".vpcmesh-cache.json"):
                (repo / name).unlink(missing_ok=True)
            cold.append(self.vpcmesh(repo, "render", count=True))
        calls = self.sops_calls()
        c = self.median(cold)
        self.row("noop-cold", "  the same, cold (no stamp, no cache)", "").cells[self.n] = \
            f"{c.wall:.2f} s, {len(calls)} sops"

    def one_changed(self, repo: Path) -> None:
        runs, calls = [], []
        for i in range(self.repeats):
            node = repo / "nodes" / f"spoke-{1 + i}.yaml"
            node.write_text(node.read_text().replace(
                "subnets:\n", f"subnets:\n  - 192.168.{200 + i}.0/24\n"))
            before = {p.name: p.read_bytes() for p in (repo / "secrets/nodes").iterdir()}
            runs.append(self.vpcmesh(repo, "render", count=True))
            calls += self.sops_calls()
            after = {p.name: p.read_bytes() for p in (repo / "secrets/nodes").iterdir()}
            assert before == after, "a subnet change re-encrypted secrets"
        m = self.median(runs)
        self.row("changed", "one spoke changed (a subnet added)", "<= 1.5 s").cells[self.n] = \
            f"{m.wall:.2f} s, sops: {' '.join(sorted(set(calls))) or 'none'}"

    def one_added(self, repo: Path) -> None:
        runs, encrypted = [], []
        rng = random.Random(7)
        for i in range(self.repeats):
            _, recipient = meshgen.identity(self.keys, f"added-{self.n}-{i}")
            name, text = meshgen.node_yaml(self.n + 10 + i, rng, recipient)
            before = {p.name: p.read_bytes() for p in (repo / "secrets/nodes").iterdir()}
            (repo / "nodes" / f"{name}.yaml").write_text(text)
            runs.append(self.vpcmesh(repo, "render", count=True))
            encrypted.append(self.sops_calls().count("encrypt"))
            after = {p.name: p.read_bytes() for p in (repo / "secrets/nodes").iterdir()}
            assert [k for k in after if after[k] != before.get(k)] == [f"{name}.sops.yaml"]
        m = self.median(runs)
        self.row("added", "one spoke added", "<= 1.5 s, 1 encrypt").cells[self.n] = \
            f"{m.wall:.2f} s, {max(encrypted)} encrypt"

    def validate(self, repo: Path) -> None:
        warm = [self.vpcmesh(repo, "validate", key=False) for _ in range(self.repeats + 2)]
        cold = []
        for _ in range(self.repeats):
            (repo / ".vpcmesh-cache.json").unlink(missing_ok=True)
            cold.append(self.vpcmesh(repo, "validate", key=False))
        w, c = self.median(warm), self.median(cold)
        self.row("validate", "validate (cold / warm cache)", "<= 1 s").cells[self.n] = \
            f"{c.wall:.2f} / {w.wall:.2f} s"

    def pulls(self, repo: Path) -> None:
        host = "spoke-1"  # present at every size
        key = self.keys / "n1.agekey"
        root = self.work / f"node-{self.n}"
        args = [*VPCMESH, "pull", "--once", "--hostname", host, "--source",
                str(repo / "build"), "--age-key", str(key), "--trust-key",
                str(repo / "mesh/signing.pub"), "--root", str(root), "--restart-cmd", "true",
                "--health-cmd", "true"]
        ok(run(args), "first pull")
        noop = self.median([ok(run(args), "no-op pull") for _ in range(self.repeats + 2)])
        self.row("pull-noop", "pull, nothing new (CPU)", "<= 0.3 s CPU").cells[self.n] = \
            f"{noop.cpu:.2f} s CPU ({noop.wall:.2f} s)"
        news = []
        for i in range(self.repeats):
            mesh = repo / "mesh/mesh.yaml"
            mesh.write_text(mesh.read_text().replace(f"port: {1194 + i}", f"port: {1195 + i}"))
            self.vpcmesh(repo, "render")
            news.append(ok(run(args), "pull of a new bundle"))
        new = self.median(news)
        self.row("pull-new", "pull, a new bundle", "").cells[self.n] = \
            f"{new.wall:.2f} s ({new.cpu:.2f} s CPU)"
        self.https_noop(repo, args)

    def https_noop(self, repo: Path, args: list[str]) -> None:
        from bundlekit import https_server

        root = self.work / f"https-node-{self.n}"
        args = [*args[:args.index("--source") + 1], "", *args[args.index("--source") + 2:]]
        args[args.index("--root") + 1] = str(root)
        with https_server(repo / "build", self.work) as (server, url, ca):
            args[args.index("--source") + 1] = url
            env = {"SSL_CERT_FILE": str(ca)}
            ok(run(args, env), "first https pull")
            server.requests.clear()
            server.sent = 0
            ok(run(args, env), "no-op https pull")
            self.row("pull-https", "  over https: requests, body bytes", "1, 0").cells[self.n] = \
                f"{len(server.requests)}, {server.sent}"

    def easyrsa(self) -> None:
        row = self.row("easyrsa", "easy-rsa (Debian), the same client certs",
                       ">= 8x the first compile")
        if not EASYRSA.exists():
            row.cells[self.n] = "not installed"
            return
        pki = self.work / f"easyrsa-{self.n}"
        env = {"EASYRSA_BATCH": "1", "EASYRSA_PKI": str(pki / "pki"), "EASYRSA_ALGO": "ec",
               "EASYRSA_CURVE": "prime256v1"}
        pki.mkdir()
        ok(run([str(EASYRSA), "init-pki"], env, cwd=pki), "easyrsa init-pki")
        ok(run([str(EASYRSA), "build-ca", "nopass"], {**env, "EASYRSA_REQ_CN": "bench CA"},
               cwd=pki), "easyrsa build-ca")
        start = time.perf_counter()
        for i in range(self.n):
            ok(run([str(EASYRSA), "build-client-full", f"spoke-{i}", "nopass"], env, cwd=pki),
               "easyrsa build-client-full")
        took = time.perf_counter() - start
        row.cells[self.n] = f"{took:.1f} s ({took / self.first_wall:.1f}x)"

    def disk(self) -> None:
        """File creation cost now: the compile's I/O (thousands of small files) moves with it,
        the sops floor does not, so the ratio is only comparable at a similar figure."""
        folder = self.work / f"disk-{self.n}"
        folder.mkdir()
        start = time.perf_counter()
        for i in range(2000):
            fd = os.open(folder / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"x" * 600)
            os.close(fd)
        per = (time.perf_counter() - start) / 2000 * 1000
        shutil.rmtree(folder)
        self.row("disk", "  disk: creating one small file", "").cells[self.n] = f"{per:.3f} ms"

    def size(self, n: int) -> None:
        self.n = n
        print(f"... {n} nodes", file=sys.stderr, flush=True)
        self.disk()
        repo = self.first_compile()
        self.disk()
        self.noop(repo)
        self.one_changed(repo)
        self.one_added(repo)
        self.validate(repo)
        self.pulls(repo)
        self.easyrsa()
        self.row("memory", "peak memory (any vpcmesh process)", "<= 300 MB").cells[n] = \
            f"{self.peak[n]:.0f} MB"

    def table(self) -> str:
        head = ["scenario", *[f"{n} nodes" for n in self.sizes], "target (1,000)"]
        body = [[r.name, *[r.cells.get(n, "") for n in self.sizes], r.target]
                for r in self.rows.values()]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
                 for row in [head, *body]]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)


def running_mesh_table(sizes: list[int]) -> str:
    """The running mesh: changes, two hubs' failover, convergence and throughput, in
    network namespaces."""
    import live

    missing = live.missing()
    if missing:
        return f"(the running mesh is not measured here: it needs {', '.join(missing)})"
    print("... the running mesh", file=sys.stderr, flush=True)
    rows = [("scenario", "measured", "target")]
    lost = live.changes()
    rows += [("packets lost between two untouched spokes (ping 10/s):", "", ""),
             ("  while a spoke joins", lost["join"], "0"),
             ("  while a spoke's subnets change", lost["subnet"], "0"),
             ("  while a spoke is revoked", lost["revoke"], "0"),
             ("revoked spoke gone from the hub", lost["revoked gone"], "<= 5 s")]
    import failover

    print("... two hubs: failover", file=sys.stderr, flush=True)
    two = failover.measure()
    rows += [("two hubs: the preferred hub's cloud cut off, spokes reach each other again",
              two["failover"], "<= 5 s (median of 5)"),
             ("  packets lost as that hub comes back (ping 10/s both ways)", two["return"],
              "0"),
             ("  packets lost while a change restarts both hubs (pulled at once)",
              two["rolling"], "0")]
    for n in sizes:
        c = live.convergence(n)
        rows.append((f"publish to all {n} nodes applied (2-min timers, simulated)",
                     f"median {c['median']:.1f} min, all {c['all']:.1f} min", ""))
    c = live.convergence(max(sizes))
    rows.append(("  a new spoke connected (the later of its and the hub's pull)",
                 f"{c['join']:.1f} min", "<= 2 timer periods (4 min)"))
    with live.mesh() as m:
        figures = live.data_plane(m)
    raw = figures["raw link"][0]
    for name, (gbits, retransmits) in figures.items():
        ratio = "" if name == "raw link" else f", {gbits / raw:.0%} of the raw link"
        rows.append((f"iperf3 {name} (5 s)", f"{gbits:.2f} Gbit/s, {retransmits} retransmits"
                     f"{ratio}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-live", action="store_true",
                        help="Skip the running mesh (network namespaces, iperf3).")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="vpcmesh-bench-"))
    try:
        bench = Bench(work, sizes, opts.repeats)
        for n in sizes:
            bench.size(n)
        print(f"vpcmesh benchmark: {os.cpu_count()} cores, median of {opts.repeats}+ runs\n")
        print(bench.table())
        if not opts.no_live:
            print()
            print(running_mesh_table(sizes))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
