"""Throwaway ClickHouse servers for tests and benches: Debian's clickhouse-server (18.16).

Each node runs deploy/clickhouse/config.xml and users.xml (the operator's files) with only its
ports and paths replaced, in its own directory under one temp dir. Two or more nodes also get
deploy/clickhouse/cluster/remote_servers.xml, listing every node as a shard of the cluster
``logharbor``. With a ZooKeeper (``start_zookeeper``, Debian's package), nodes get the
replicated/ fragments instead: shards x replicas, zookeeper.xml and each node's macros.xml.

    servers = start_servers(2)         # or start_servers(2, 2, zookeeper=start_zookeeper())
    url = servers.events_url("logharbor")   # clickhouse://default@h1:p1,h2:p2/logharbor?cluster=logharbor
    servers.stop()

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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    shard: int = 1
    replica: int = 1
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
        return _tails(self.root, ("stderr", "log/clickhouse-server.err.log"), lines)


def _tails(root: Path, names: tuple[str, ...], lines: int) -> str:
    parts = []
    for name in names:
        path = root / name
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path}\n" + "\n".join(text))
    return "\n".join(parts)


def _stop(processes: list[subprocess.Popen[bytes] | None], root: Path) -> None:
    """SIGTERM each process, SIGKILL any still running at the deadline, remove ``root``."""
    try:
        running = [p for p in processes if p is not None and p.poll() is None]
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
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Servers:
    """Running nodes; ``cluster`` is the remote_servers cluster name when there are several;
    ``replicated`` when they have ZooKeeper and macros for ReplicatedMergeTree."""

    root: Path
    nodes: list[Node]
    cluster: str | None
    replicated: bool = False

    @property
    def http_urls(self) -> list[str]:
        return [node.http_url for node in self.nodes]

    def events_url(self, database: str, user: str = "default", password: str = "") -> str:
        """LOGHARBOR_EVENTS_URL for these nodes: every node, ``?cluster=`` when clustered, and
        ``replicated=1`` when the local tables can be ReplicatedMergeTree."""
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        hosts = ",".join(node.address for node in self.nodes)
        query = [f"cluster={self.cluster}"] if self.cluster else []
        if self.replicated:
            query.append("replicated=1")
        return f"clickhouse://{auth}@{hosts}/{database}" + ("?" + "&".join(query) if query else "")

    def stop(self) -> None:
        _stop([node.process for node in self.nodes], self.root)


@dataclass
class ZooKeeper:
    """A standalone Apache ZooKeeper (Debian's ``zookeeper``) for replicated tables."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        _stop([self.process], self.root)


def _set(root: ET.Element, path: str, value: str) -> None:
    element = root.find(path)
    if element is None:  # the deploy file changed shape: fail here, not with a stray server
        raise ClickHouseError(f"deploy/clickhouse config has no <{path}>")
    element.text = value


def _write(tree: ET.ElementTree[ET.Element], path: Path) -> None:
    tree.write(path, encoding="unicode", xml_declaration=True)


def _node_config(
    node: Node, peers: list[Node], replicated: bool, zookeeper: ZooKeeper | None
) -> None:
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
    _write(tree, node.root / "config.xml")
    shutil.copyfile(DEPLOY / "users.xml", node.root / "users.xml")
    config_d = node.root / "config.d"
    config_d.mkdir()
    if len(peers) > 1:
        _write(_cluster_config(peers, replicated), config_d / "remote_servers.xml")
    if zookeeper is not None:
        zk = ET.parse(DEPLOY / "replicated" / "zookeeper.xml")
        _set(zk.getroot(), "zookeeper/node/port", str(zookeeper.port))
        _write(zk, config_d / "zookeeper.xml")
        macros = ET.parse(DEPLOY / "replicated" / "macros.xml")
        _set(macros.getroot(), "macros/shard", f"{node.shard:02d}")
        _set(macros.getroot(), "macros/replica", node.name)
        _write(macros, config_d / "macros.xml")


def _cluster_config(peers: list[Node], replicated: bool) -> ET.ElementTree[ET.Element]:
    """deploy's remote_servers.xml with the peers as shards and replicas, modelled on its first
    shard's first replica."""
    tree = ET.parse(DEPLOY / ("replicated" if replicated else "cluster") / "remote_servers.xml")
    cluster = tree.getroot().find(f"remote_servers/{CLUSTER}")
    if cluster is None:
        raise ClickHouseError(f"remote_servers.xml has no cluster {CLUSTER!r}")
    shard_template = copy.deepcopy(cluster.findall("shard")[0])
    replica_template = shard_template.findall("replica")[0]
    for old in [*cluster.findall("shard"), *shard_template.findall("replica")]:
        (cluster if old.tag == "shard" else shard_template).remove(old)
    for number in sorted({peer.shard for peer in peers}):
        shard = copy.deepcopy(shard_template)
        for peer in (p for p in peers if p.shard == number):
            replica = copy.deepcopy(replica_template)
            _set(replica, "host", "127.0.0.1")
            _set(replica, "port", str(peer.tcp_port))
            shard.append(replica)
        cluster.append(shard)
    return tree


def _run_as(preferred: str) -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for user in (preferred, "nobody"):
        try:
            return pwd.getpwnam(user)
        except KeyError:
            continue
    raise ClickHouseError(f"running as root, and no {preferred} or nobody user to run it as")


def _chown(root: Path, user: pwd.struct_passwd | None) -> None:
    if user is not None:
        for path in [root, *root.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)


def _launch(
    command: list[str], root: Path, user: pwd.struct_passwd | None
) -> subprocess.Popen[bytes]:
    # setpriv execs the program (same pid, so our signals reach it), drops to the service user,
    # and sets a parent-death signal after that switch: a test run killed with -9 must not leave
    # servers behind on a shared machine. (So the thread that starts them must outlive them.)
    wrapper = ["setpriv", "--pdeathsig", "KILL"]
    if user is not None:
        wrapper += ["--reuid", str(user.pw_uid), "--regid", str(user.pw_gid), "--clear-groups"]
    with open(root / "stderr", "wb") as stderr:
        return subprocess.Popen(
            [*wrapper, "--", *command],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )


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


def start_servers(
    shards: int = 1, replicas: int = 1, zookeeper: ZooKeeper | None = None
) -> Servers | None:
    """``shards`` x ``replicas`` running nodes, or None when clickhouse-server is not installed.

    Several nodes form the cluster ``logharbor``. ``zookeeper`` gives every node the
    replicated/zookeeper.xml and macros.xml fragments ({shard} is 01, 02...; {replica} the node's
    name), which ReplicatedMergeTree needs; more than one replica needs it.
    """
    server = find_server()
    if server is None:
        return None
    if replicas > 1 and zookeeper is None:
        raise ValueError("replicas need a ZooKeeper (start_zookeeper())")
    user = _run_as("clickhouse")
    root = Path(tempfile.mkdtemp(prefix="logharbor-ch-"))
    os.chmod(root, 0o755)  # the server user walks into its node directory
    count = shards * replicas
    ports = free_ports(3 * count)
    nodes = []
    for i in range(count):
        shard, replica = divmod(i, replicas)
        name = f"ch{shard + 1}" + (chr(ord("a") + replica) if replicas > 1 else "")
        nodes.append(
            Node(
                name=name,
                root=root / name,
                http_port=ports[3 * i],
                tcp_port=ports[3 * i + 1],
                interserver_port=ports[3 * i + 2],
                shard=shard + 1,
                replica=replica + 1,
            )
        )
    servers = Servers(
        root=root,
        nodes=nodes,
        cluster=CLUSTER if count > 1 else None,
        replicated=zookeeper is not None,
    )
    try:
        for node in nodes:
            node.root.mkdir()
            _node_config(node, nodes, replicas > 1, zookeeper)
            _chown(node.root, user)
        for node in nodes:
            command = [str(server), f"--config-file={node.root / 'config.xml'}"]
            node.process = _launch(command, node.root, user)
        _wait_ready(nodes)
    except BaseException:
        servers.stop()
        raise
    return servers


ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")


def start_zookeeper() -> ZooKeeper | None:
    """A standalone ZooKeeper on a free loopback port, or None when Debian's is not installed."""
    java = shutil.which("java")
    if java is None or not ZOOKEEPER_JAR.exists():
        return None
    user = _run_as("zookeeper")
    root = Path(tempfile.mkdtemp(prefix="logharbor-zk-"))
    (port,) = free_ports(1)
    (root / "data").mkdir()
    (root / "zoo.cfg").write_text(
        f"tickTime=2000\ndataDir={root / 'data'}\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
        "4lw.commands.whitelist=srvr\nmaxClientCnxns=0\n"
    )
    _chown(root, user)
    keeper = ZooKeeper(root=root, port=port)
    command = [
        java,
        "-Xmx256m",
        "-cp",
        str(ZOOKEEPER_JAR),
        "org.apache.zookeeper.server.ZooKeeperServerMain",
        str(root / "zoo.cfg"),
    ]
    try:
        keeper.process = _launch(command, root, user)
        deadline = time.monotonic() + START_DEADLINE
        while not _zookeeper_ok(port):
            if keeper.process.poll() is not None or time.monotonic() > deadline:
                raise ClickHouseError(f"ZooKeeper did not start\n{_tails(root, ('stderr',), 30)}")
            time.sleep(0.05)
    except BaseException:
        keeper.stop()
        raise
    return keeper


def _zookeeper_ok(port: int) -> bool:
    # Not `ruok`: it says imok while the server still closes sessions, and a ClickHouse 18.16
    # whose first session fails crashes on its next ZooKeeper call. `srvr` says "not currently
    # serving requests" until sessions work.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"srvr")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            return answer.startswith(b"Zookeeper version")
    except OSError:
        return False


@contextmanager
def replicated_servers() -> Iterator[Servers]:
    """2 shards x 2 replicas with a ZooKeeper, stopped afterwards; fails the test when Debian's
    clickhouse-server or zookeeper is missing."""
    keeper = start_zookeeper()
    assert keeper is not None, "Debian's zookeeper (and java) is not installed"
    servers = None
    try:
        servers = start_servers(shards=2, replicas=2, zookeeper=keeper)
        assert servers is not None, "clickhouse-server is not installed"
        yield servers
    finally:
        if servers is not None:
            servers.stop()
        keeper.stop()
