"""Throwaway ClickHouse servers for tests and benches: Debian's clickhouse-server (18.16).

Each node runs deploy/clickhouse/config.xml and users.xml (the operator's files) with only its
ports and paths replaced, in its own directory under one temp dir. Two or more nodes also get
deploy/clickhouse/cluster/remote_servers.xml, listing every node as a shard of the cluster
``logharbor``.

As root the servers run as the ``clickhouse`` user the package creates (``nobody`` without it),
through util-linux's ``setpriv`` rather than ``runuser``: runuser stays as the parent of what it
runs, so signals would reach the wrapper, not the server.
"""

from __future__ import annotations

import copy
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "clickhouse"
CLUSTER = "logharbor"
SERVER_CANDIDATES = ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")
# Guards against a server that never comes up or never goes away, not speed limits.
START_DEADLINE = 60.0
STOP_DEADLINE = 30.0


def find_server() -> Path | None:
    on_path = shutil.which("clickhouse-server")
    if on_path:
        return Path(on_path)
    for candidate in SERVER_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all sockets held open until all are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class ClickHouseError(RuntimeError):
    """A query the server refused (its message), or a server that did not start."""


@dataclass
class Node:
    name: str
    root: Path
    http_port: int
    tcp_port: int
    interserver_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def query(
        self, sql: str, data: bytes | str | None = None, settings: Mapping[str, str] | None = None
    ) -> str:
        """Run ``sql`` over HTTP (``data``, if any, is the INSERT's payload); the answer's text."""
        params = {**(settings or {})}
        if data is None:
            response = httpx.post(self.http_url, params=params, content=sql, timeout=60)
        else:
            params["query"] = sql
            response = httpx.post(self.http_url, params=params, content=data, timeout=60)
        if response.status_code != 200:
            raise ClickHouseError(f"{self.name}: {response.status_code} {response.text.strip()}")
        return response.text

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for name in ("stderr", "log/clickhouse-server.err.log"):
            path = self.root / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)


@dataclass
class Servers:
    """Running nodes; ``cluster`` is the remote_servers cluster name when there are several."""

    root: Path
    nodes: list[Node]
    cluster: str | None

    @property
    def http_urls(self) -> list[str]:
        return [node.http_url for node in self.nodes]

    def events_url(self, database: str, user: str = "default", password: str = "") -> str:
        """LOGHARBOR_EVENTS_URL for these nodes: every node, and ``?cluster=`` when clustered."""
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        hosts = ",".join(node.address for node in self.nodes)
        url = f"clickhouse://{auth}@{hosts}/{database}"
        return f"{url}?cluster={self.cluster}" if self.cluster else url

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL any still running at the deadline, remove the temp dir."""
        try:
            running = [n.process for n in self.nodes if n.process and n.process.poll() is None]
            for process in running:
                process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_DEADLINE
            for process in running:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _set(root: ET.Element, path: str, value: str) -> None:
    element = root.find(path)
    if element is None:  # the deploy file changed shape: fail here, not with a stray server
        raise ClickHouseError(f"deploy/clickhouse config has no <{path}>")
    element.text = value


def _node_config(node: Node, peers: list[Node], run_as: str | None) -> None:
    tree = ET.parse(DEPLOY / "config.xml")
    conf = tree.getroot()
    for key, port in (
        ("http_port", node.http_port),
        ("tcp_port", node.tcp_port),
        ("interserver_http_port", node.interserver_port),
    ):
        _set(conf, key, str(port))
    for key, sub in (
        ("path", "data/"),
        ("tmp_path", "tmp/"),
        ("user_files_path", "user_files/"),
        ("format_schema_path", "format_schemas/"),
        ("logger/log", "log/clickhouse-server.log"),
        ("logger/errorlog", "log/clickhouse-server.err.log"),
    ):
        _set(conf, key, str(node.root / sub))
    _set(conf, "logger/level", "information")
    (node.root / "log").mkdir(parents=True)
    tree.write(node.root / "config.xml", encoding="unicode", xml_declaration=True)
    shutil.copyfile(DEPLOY / "users.xml", node.root / "users.xml")
    if peers:
        (node.root / "config.d").mkdir()
        _cluster_config(peers).write(
            node.root / "config.d" / "remote_servers.xml", encoding="unicode", xml_declaration=True
        )
    if run_as:
        for path in [node.root, *node.root.rglob("*")]:
            shutil.chown(path, user=run_as, group=pwd.getpwnam(run_as).pw_gid)


def _cluster_config(peers: list[Node]) -> ET.ElementTree[ET.Element]:
    """deploy's remote_servers.xml with one shard per node, modelled on its first shard."""
    tree = ET.parse(DEPLOY / "cluster" / "remote_servers.xml")
    cluster = tree.getroot().find(f"remote_servers/{CLUSTER}")
    if cluster is None:
        raise ClickHouseError(f"remote_servers.xml has no cluster {CLUSTER!r}")
    shards = cluster.findall("shard")
    template = shards[0]
    for shard in shards:
        cluster.remove(shard)
    for peer in peers:
        shard = copy.deepcopy(template)
        _set(shard, "replica/host", "127.0.0.1")
        _set(shard, "replica/port", str(peer.tcp_port))
        cluster.append(shard)
    return tree


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for user in ("clickhouse", "nobody"):
        try:
            pwd.getpwnam(user)
            return user
        except KeyError:
            continue
    raise ClickHouseError("running as root, and no clickhouse or nobody user to run the server as")


def _launch(server: Path, node: Node, run_as: str | None) -> None:
    # setpriv execs the server (same pid, so our signals reach it), drops to the server user, and
    # sets a parent-death signal after that switch: a test run killed with -9 must not leave
    # servers behind on a shared machine. (So the thread that starts them must outlive them.)
    command = ["setpriv", "--pdeathsig", "KILL"]
    if run_as:
        user = pwd.getpwnam(run_as)
        command += ["--reuid", str(user.pw_uid), "--regid", str(user.pw_gid), "--clear-groups"]
    command += ["--", str(server), f"--config-file={node.root / 'config.xml'}"]
    stderr = open(node.root / "stderr", "wb")  # noqa: SIM115 - the child owns it
    try:
        node.process = subprocess.Popen(
            command,
            cwd=node.root,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
    finally:
        stderr.close()


def _wait_ready(nodes: list[Node]) -> None:
    deadline = time.monotonic() + START_DEADLINE
    pending = list(nodes)
    with httpx.Client(timeout=2) as client:
        while pending:
            node = pending[0]
            assert node.process is not None
            if node.process.poll() is not None:
                raise ClickHouseError(
                    f"{node.name} exited with {node.process.returncode}\n{node.log_tail()}"
                )
            try:
                answer = client.get(node.http_url, params={"query": "SELECT 1"})
                if answer.status_code == 200 and answer.text.strip() == "1":
                    pending.pop(0)
                    continue
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ClickHouseError(f"{node.name} did not answer SELECT 1\n{node.log_tail()}")
            time.sleep(0.05)


def start_servers(count: int = 1) -> Servers | None:
    """``count`` running nodes (a ``logharbor`` cluster of ``count`` shards when count > 1), or
    None when clickhouse-server is not installed."""
    server = find_server()
    if server is None:
        return None
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="logharbor-ch-"))
    os.chmod(root, 0o755)  # the server user walks into its node directory
    ports = free_ports(3 * count)
    nodes = [
        Node(
            name=f"ch{i + 1}",
            root=root / f"ch{i + 1}",
            http_port=ports[3 * i],
            tcp_port=ports[3 * i + 1],
            interserver_port=ports[3 * i + 2],
        )
        for i in range(count)
    ]
    servers = Servers(root=root, nodes=nodes, cluster=CLUSTER if count > 1 else None)
    try:
        for node in nodes:
            node.root.mkdir()
            _node_config(node, nodes if count > 1 else [], run_as)
        for node in nodes:
            _launch(server, node, run_as)
        _wait_ready(nodes)
    except BaseException:
        servers.stop()
        raise
    return servers
