"""A super-cluster on loopback (JetStream clusters joined by gateways, and a leaf node with its
own JetStream domain), and a tagged cluster whose start-up survives a node left out of the meta
group.

``SuperCluster`` starts two 3-node clusters (``C1`` and ``C2`` by default) whose gateways join
them into one super-cluster (one JetStream meta group of six peers, JetStream domain ``hub``),
and one leaf node, a standalone JetStream server in domain ``edge`` connected to ``C1``'s leaf
node port. Every process is started first and readiness is then waited for by polling conditions
(health, the meta group, a replicated placement probe in each cluster, the leaf domain's API
answering through the hub), with generous deadlines: seven servers on two busy cores can take a
while. docs/multi-region.md describes the layout and the server facts it relies on.

Every server is stopped when the context manager exits, also after a failure, and the harness's
``atexit`` safety net (:mod:`tests.support.natsserver`) covers the rest.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.natsserver import (
    PORT_TAKEN,
    NatsCluster,
    NatsServer,
    _spawn,
    default_binary,
    free_port,
    js_request_sync,
    wait_meta_group,
)

#: Leaf nodes and gateways together need a system account. Clients that give no credentials are
#: the application account's user (``no_auth_user``), so tests connect as they would to one server.
APP_USER = "app:app"
ACCOUNTS = """
accounts {
  SYS: { users: [ { user: "sys", password: "sys" } ] }
  APP: { jetstream: enabled, users: [ { user: "app", password: "app" } ] }
}
system_account: SYS
no_auth_user: app
"""


@dataclass
class SuperCluster:
    """Clusters joined by gateways (domain ``hub_domain``) plus one leaf in ``leaf_domain``."""

    binary: str = field(default_factory=default_binary)
    clusters: tuple[str, ...] = ("C1", "C2")
    size: int = 3
    hub_domain: str = "hub"
    leaf_domain: str = "edge"
    #: The cluster the leaf node connects to.
    leaf_hub: str = "C1"
    nodes: dict[str, list[NatsServer]] = field(default_factory=dict)
    leaf: NatsServer | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    # ------------------------------------------------------------------ addresses

    def urls(self, cluster: str) -> list[str]:
        """The client URLs of one cluster's nodes."""
        return [n.url for n in self.nodes[cluster]]

    def url(self, cluster: str) -> str:
        """One cluster's client URLs, comma separated (what ``-s`` takes)."""
        return ",".join(self.urls(cluster))

    @property
    def leaf_url(self) -> str:
        assert self.leaf is not None
        return self.leaf.url

    @property
    def all_nodes(self) -> list[NatsServer]:
        return [n for c in self.clusters for n in self.nodes[c]]

    # ------------------------------------------------------------------ start-up

    def start(self, timeout: float = 180.0) -> SuperCluster:
        """Start every server, then wait until the super-cluster and the leaf are usable; once
        more on fresh ports when one was taken by another process meanwhile (test processes
        run side by side)."""
        try:
            return self._start(timeout)
        except RuntimeError as exc:
            if PORT_TAKEN not in str(exc):
                raise
            print(f"\nstarting the super-cluster again: {exc}", file=sys.stderr)
            self.nodes, self.leaf = {}, None
            return self._start(timeout)

    def _start(self, timeout: float) -> SuperCluster:
        self._tmp = tempfile.TemporaryDirectory(prefix="jelmore-super-")
        root = Path(self._tmp.name)
        route_ports = {c: [free_port() for _ in range(self.size)] for c in self.clusters}
        gateway_ports = {c: [free_port() for _ in range(self.size)] for c in self.clusters}
        leaf_ports = [free_port() for _ in range(self.size)]
        gateways = ", ".join(
            f'{{ name: "{c}", urls: [{_quoted(gateway_ports[c])}] }}' for c in self.clusters
        )
        for cluster in self.clusters:
            self.nodes[cluster] = []
            for i in range(self.size):
                name = f"{cluster.lower()}-n{i}"
                # The gateway's name must be the cluster's (the server refuses otherwise).
                config = [
                    f'cluster {{ name: "{cluster}", listen: "127.0.0.1:{route_ports[cluster][i]}", '
                    f"routes: [{_quoted(route_ports[cluster])}] }}",
                    f'gateway {{ name: "{cluster}", '
                    f'listen: "127.0.0.1:{gateway_ports[cluster][i]}", gateways: [{gateways}] }}',
                ]
                if cluster == self.leaf_hub:
                    config.append(f'leafnodes {{ listen: "127.0.0.1:{leaf_ports[i]}" }}')
                self.nodes[cluster].append(
                    NatsServer(
                        binary=self.binary,
                        store_dir=root / name,
                        server_name=name,
                        config="\n".join([*config, ACCOUNTS]),
                        jetstream_config=f'domain: "{self.hub_domain}"',
                    )
                )
        self.leaf = NatsServer(
            binary=self.binary,
            store_dir=root / "leaf",
            server_name="leaf-n0",
            config=(
                f"leafnodes {{ remotes: [ {{ urls: [{_quoted(leaf_ports, APP_USER)}], "
                f'account: "APP" }} ] }}\n{ACCOUNTS}'
            ),
            jetstream_config=f'domain: "{self.leaf_domain}"',
        )
        try:
            for node in [*self.all_nodes, self.leaf]:
                _spawn(node)  # all of them first: JetStream is ready only once a meta leader exists
            for node in [*self.all_nodes, self.leaf]:
                node.wait_ready(timeout)
            self.wait_meta_settled(timeout)
            for cluster in self.clusters:
                self.wait_placeable(cluster, timeout)
            self.wait_leaf_domain(timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def wait_meta_settled(self, timeout: float = 60.0) -> None:
        """Every node of every cluster agrees on one meta leader, which sees every peer current."""
        wait_meta_group(self.all_nodes, timeout)

    def wait_placeable(self, cluster: str, timeout: float = 60.0) -> None:
        """Until an R{size} stream placed in ``cluster`` can be created (then delete it)."""
        name = f"PLACEMENT_PROBE_{cluster}"
        config = {
            "name": name,
            "subjects": [f"jelmore.placement-probe.{cluster}"],
            "num_replicas": self.size,
            "storage": "memory",
            "placement": {"cluster": cluster},
        }
        urls = self.urls(cluster)
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            last = js_request_sync(urls, f"$JS.API.STREAM.CREATE.{name}", config)
            if isinstance(last, dict) and "error" not in last:
                js_request_sync(urls, f"$JS.API.STREAM.DELETE.{name}")
                return
            time.sleep(0.3)
        raise RuntimeError(f"cluster {cluster} could not place an R{self.size} stream: {last}")

    def wait_leaf_domain(self, timeout: float = 60.0) -> None:
        """Until the leaf's JetStream answers through the hub, as ``$JS.<leaf domain>.API``."""
        urls = self.urls(self.leaf_hub)
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            last = js_request_sync(urls, f"$JS.{self.leaf_domain}.API.INFO")
            if isinstance(last, dict) and last.get("domain") == self.leaf_domain:
                return
            time.sleep(0.3)
        raise RuntimeError(f"the leaf's domain {self.leaf_domain} did not answer: {last}")

    # ------------------------------------------------------------------ shutdown

    def cleanup(self) -> None:
        for node in self.all_nodes:
            node.cleanup()
        if self.leaf is not None:
            self.leaf.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SuperCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class TaggedCluster(NatsCluster):
    """A :class:`~tests.support.natsserver.NatsCluster` (any size, ``node_tags`` for placement
    tags) whose start-up rejoins a node left outside the meta group (see :func:`wait_meta_group`)."""

    def wait_meta_settled(self, timeout: float = 30.0) -> None:
        wait_meta_group(self.nodes, max(timeout, 60.0))


def _quoted(ports: list[int], user: str = "") -> str:
    auth = f"{user}@" if user else ""
    return ", ".join(f'"nats://{auth}127.0.0.1:{p}"' for p in ports)
