"""Benchmarks of the directory: search over 20,000 services from 100 peers; then sync, signing.

Run on demand (not part of the test suite):

    python -m tests.benchmarks.bench_directory [--only search|sync|signing]
        [--peers 100] [--services 200] [--iterations 100]
        [--rounds 5] [--server-processes N] [--profile] [--runs 20] [--requests 300]

Without ``--only`` it runs the search benchmark, then the sync benchmark and the
signing and serving benchmark of :mod:`tests.benchmarks.bench_directory_sync` (which
describes them; the same figures as there, with ``--peers`` peers synced and a
``--services``-service document signed), printing every figure and the wall time.

``search``: one node, initialized in a temporary folder (SQLite; and again on
PostgreSQL when ``EXCHANGE_TEST_DATABASE_URL`` is set, in a schema of its own, dropped
after), holds ``--peers`` trusted peers (rows written directly, as a sync would leave
them; one in twenty with an expired document) with ``--services`` services each,
stored through the directory index like a verified document. The services come from
:mod:`tests.benchmarks.directory_data`: names and descriptions in English and some in
Arabic, languages, taxonomy terms, age ranges, service areas, contact routes, points
around a few cities (some safe locations without one), all four capacity statuses. On
PostgreSQL the tables are then analyzed, as autovacuum would after such a load. A mix
of typical queries (text; text and language; category and accepting; near a point;
affirming and age; no filter), each run ``--iterations`` times in turn, each timed as
a request does it: a session, the search, its page of 20 results. Printed: p50, p95
and max per kind and overall (target p95 under 25 ms).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from exchange_node.db import normalize_url
from exchange_node.db.models import Peer, PeerDirectory, PeerStatus
from exchange_node.node import Node
from exchange_node.protocol.capacity import ServiceCapacity
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.wire import ORGANIZATION_KINDS
from exchange_node.services.directory_index import refresh_statistics, replace_peer_services
from exchange_node.services.directory_search import DirectoryQuery, search
from exchange_node.services.service_records import Publisher
from tests.benchmarks.bench_directory_sync import sync_parts
from tests.benchmarks.directory_data import (
    CITIES,
    LANGUAGES,
    TOPICS,
    Timings,
    benchmark_parser,
    capacity_change,
    federation_in,
    run_parts,
    service_record,
    sqlite_file,
)
from tests.conftest import NOW
from tests.node.conftest import TestClock

DAY = 86_400
SEARCH_TARGET_P95_MS = 25.0


def capacity_entry(rng: random.Random, record: dict[str, Any]) -> ServiceCapacity:
    """``record`` as a peer's capacity document lists it, with a random capacity."""
    change = capacity_change(rng)
    return ServiceCapacity(
        service_id=record["id"],
        name=record["name"],
        service=record,
        status=str(change.status),
        accepting_referrals=bool(change.accepting_referrals),
        intake_fields=change.intake_fields or (),
        updated_at=format_timestamp(NOW - rng.randint(0, 90 * DAY)),
        verified_at=format_timestamp(NOW - rng.randint(0, 30 * DAY))
        if rng.random() < 0.6
        else None,
        wait_days=change.wait_days if isinstance(change.wait_days, int) else None,
        notes=change.notes if isinstance(change.notes, str) else None,
    )


def build_directory(node: Node, peers: int, per_peer: int, seed: int = 4) -> None:
    """``peers`` trusted peers with ``per_peer`` services each, one in twenty stale."""
    rng = random.Random(seed)
    for p in range(peers):
        with node.database.session() as session:
            peer = Peer(
                entity_id=f"https://peer-{p}.example",
                status=PeerStatus.TRUSTED.value,
                organization_name=f"Peer organization {p}",
                organization_kind=ORGANIZATION_KINDS[p % len(ORGANIZATION_KINDS)],
                entity_configuration="-",
                configuration_issued_at=NOW,
                configuration_expires_at=NOW + DAY,
                capacity_endpoint=f"https://peer-{p}.example/federation/v1/capacity",
                inbox_endpoint=f"https://peer-{p}.example/federation/v1/inbox",
                peering_endpoint=f"https://peer-{p}.example/federation/v1/peering-requests",
                languages=["en"],
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(peer)
            session.flush()
            publisher = Publisher(peer.organization_name, peer.entity_id)
            records = (service_record(rng, n, publisher) for n in range(per_peer))
            entries = [capacity_entry(rng, record) for record in records]
            replace_peer_services(session, peer, entries)
            expires = NOW - DAY if p % 20 == 0 else NOW + DAY
            session.add(PeerDirectory(peer_id=peer.id, version=1, expires_at=expires, failures=0))
    with node.database.session() as session:  # as the sync does after a round that changed
        refresh_statistics(session)


def search_queries(rng: random.Random) -> dict[str, Callable[[], DirectoryQuery]]:
    """Query kinds, each drawing its criteria at random from the data's vocabulary."""
    words = ["counselling", "legal", "housing", "food", "youth", "tenancy", "anxiety", "استشارة"]
    return {
        "text": lambda: DirectoryQuery(text=rng.choice(words)),
        "text + language": lambda: DirectoryQuery(
            text=rng.choice(words[:5]), language=language_code_or_name(rng)
        ),
        "category + accepting": lambda: DirectoryQuery(
            categories=(rng.choice(TOPICS)[0],), accepting=True
        ),
        "near a point (10 km)": lambda: DirectoryQuery(near=city_centre(rng), radius_km=10),
        "affirming + age": lambda: DirectoryQuery(affirming=True, age=rng.randint(10, 40)),
        "no filter": lambda: DirectoryQuery(),
    }


def language_code_or_name(rng: random.Random) -> str:
    term = rng.choice(LANGUAGES)
    return rng.choice((term.code, term.name or term.code))


def city_centre(rng: random.Random) -> tuple[float, float]:
    city = rng.choice(list(CITIES.values()))
    return city.latitude, city.longitude


def bench_search(node: Node, iterations: int) -> list[Timings]:
    """Time each query kind in turn, ``iterations`` rounds, after one warm-up round."""
    kinds = search_queries(random.Random(7))
    timings: dict[str, list[float]] = {name: [] for name in kinds}
    for round_ in range(iterations + 1):
        for name, make in kinds.items():
            query = make()
            started = time.perf_counter()
            with node.database.session() as session:
                search(session, query, now=NOW)
            if round_:
                timings[name].append(1000 * (time.perf_counter() - started))
    results = [Timings(name, values) for name, values in timings.items()]
    return [*results, Timings("all", [v for t in results for v in t.milliseconds])]


@contextmanager
def database(kind: str, home: Path) -> Iterator[Callable[[str], str]]:
    """Database URLs by node name: SQLite files, or PostgreSQL schemas dropped afterwards."""
    if kind == "sqlite":
        yield partial(sqlite_file, home)
        return
    import psycopg

    server = os.environ["EXCHANGE_TEST_DATABASE_URL"]
    schema = f"exnode_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[arg-type]
    try:
        yield lambda name: f"{normalize_url(server)}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


def run_search_benchmark(peers: int, services: int, iterations: int) -> None:
    """The search benchmark on SQLite, then on PostgreSQL when a server is given."""
    print(f"\n== search: {peers * services:,} services from {peers} peers, "
          f"{iterations} rounds of each query kind ==")  # fmt: skip
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("EXCHANGE_TEST_DATABASE_URL") else [])
    for kind in kinds:
        search_on(kind, peers, services, iterations)


def search_on(kind: str, peers: int, services: int, iterations: int) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        database(kind, Path(folder)) as urls,
        federation_in(Path(folder), urls, TestClock()) as federation,
    ):
        node = federation.add("searcher", "community-network").node
        started = time.perf_counter()
        build_directory(node, peers, services)
        print(f"\n{kind}: stored {peers * services:,} services from {peers} peers "
              f"in {time.perf_counter() - started:.1f} s (untimed)")  # fmt: skip
        timings = bench_search(node, iterations)
        for timing in timings:
            print("  search " + timing.line())
        overall = timings[-1].percentile(0.95)
        verdict = "met" if overall < SEARCH_TARGET_P95_MS else "NOT met"
        print(f"  search p95 over all kinds {overall:.2f} ms: target < 25 ms {verdict}")


def main() -> None:
    """The search, sync and signing benchmarks, or ``--only`` one of them."""
    parser = benchmark_parser((__doc__ or "").splitlines()[0], ("search", "sync", "signing"))
    parser.add_argument("--iterations", type=int, default=100, help="rounds of each query kind")
    args = parser.parse_args()
    search = partial(run_search_benchmark, args.peers, args.services, args.iterations)
    run_parts(args.only, {"search": search, **sync_parts(args)})


if __name__ == "__main__":
    main()
