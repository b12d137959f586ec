"""Benchmark: the directory, searched over 20,000 services from 100 trusted peers.

Run on demand (not part of the test suite):

    python -m tests.benchmarks.bench_directory [--peers 100] [--services 200] [--iterations 100]

One node, initialized in a temporary folder (SQLite; and again on PostgreSQL when
``EXCHANGE_TEST_DATABASE_URL`` is set, in a schema of its own, dropped after),
holds ``--peers`` trusted peers (rows written directly, as a sync would leave
them; one in twenty with an expired document) with ``--services`` services each,
stored through the directory index like a verified document: names and
descriptions in English and some in Arabic, languages, taxonomy terms, age
ranges, service areas, points around a few cities, all four capacity statuses.
On PostgreSQL the tables are then analyzed, as autovacuum would after such a load.

``search``: a mix of typical queries (text; text and language; category and
accepting; near a point; affirming and age; no filter), each run
``--iterations`` times in turn, each timed as a request does it: a session, the
search, its page of 20 results. Printed: p50, p95 and max per kind and overall
(target p95 under 25 ms).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange_node.db import normalize_url
from exchange_node.db.models import Peer, PeerDirectory, PeerStatus
from exchange_node.hsds import affirming_attribute
from exchange_node.node import Node
from exchange_node.protocol.capacity import ServiceCapacity
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.wire import CAPACITY_STATUSES, ORGANIZATION_KINDS
from exchange_node.services.directory_index import refresh_statistics, replace_peer_services
from exchange_node.services.directory_search import DirectoryQuery, search
from tests.conftest import NOW
from tests.node.conftest import Federation, TestClock

DAY = 86_400
SEARCH_TARGET_P95_MS = 25.0

TOPICS = [
    ("counselling", "Counselling", "Talking therapy for individuals and families"),
    ("sexual-health", "Sexual health", "Confidential testing, contraception and advice"),
    ("legal", "Legal aid", "Advice on evictions, benefits, immigration and debt"),
    ("housing", "Housing", "Emergency accommodation and help finding a tenancy"),
    ("food", "Food", "Food parcels, community meals and vouchers"),
    ("youth", "Youth work", "Clubs, mentoring and activities for young people"),
    ("education", "Education", "Homework help, tutoring and English classes"),
    ("mental-health", "Mental health", "Support for anxiety, depression and crisis"),
    ("employment", "Employment", "Help with CVs, interviews and training"),
    ("disability", "Disability", "Advocacy, equipment and accessible transport"),
]
ARABIC = [
    ("استشارة نفسية", "جلسات استشارة فردية وعائلية"),
    ("مساعدة قانونية", "نصائح قانونية مجانية حول السكن والهجرة"),
    ("بنك الطعام", "طرود غذائية أسبوعية للعائلات"),
    ("دعم الشباب", "أنشطة وإرشاد للشباب"),
]
QUALIFIERS = ["Community", "Family", "Youth", "Women's", "Drop-in", "Evening", "Outreach", "Rapid"]
LANGUAGES = [("en", "English"), ("ar", "Arabic"), ("fr", "French"), ("so", "Somali"),
             ("ur", "Urdu"), ("pl", "Polish"), ("es", "Spanish"), ("fa", "Persian")]  # fmt: skip
CITIES = {
    "London": (51.5074, -0.1278),
    "Manchester": (53.4808, -2.2426),
    "Birmingham": (52.4862, -1.8904),
    "Leeds": (53.8008, -1.5491),
    "Bristol": (51.4545, -2.5879),
    "Glasgow": (55.8642, -4.2518),
}
DISTRICTS = ["Northside", "Southbank", "Eastgate", "Westfield", "Old Town", "Riverside"]


@dataclass(frozen=True)
class Timings:
    name: str
    milliseconds: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.milliseconds)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.name:24s} p50 {self.percentile(0.5):6.2f} ms  "
            f"p95 {self.percentile(0.95):6.2f} ms  max {max(self.milliseconds):6.2f} ms  "
            f"(n={len(self.milliseconds)})"
        )


def uid() -> str:
    return str(uuid.uuid4())


def service_record(rng: random.Random, n: int) -> dict[str, Any]:
    """A realistic HSDS 3.1 service: a topic, languages, ages, an area, a place, maybe affirming."""
    code, term_name, description = rng.choice(TOPICS)
    name = f"{rng.choice(QUALIFIERS)} {term_name.lower()} service {n}"
    if rng.random() < 0.15:
        name, description = rng.choice(ARABIC)
        name = f"{name} {n}"
    city = rng.choice(list(CITIES))
    latitude, longitude = CITIES[city]
    district = rng.choice(DISTRICTS)
    term_id = uid()
    attributes = [
        {
            "id": uid(),
            "taxonomy_term_id": term_id,
            "taxonomy_term": {"id": term_id, "code": code, "name": term_name, "description": ""},
        }
    ]
    if rng.random() < 0.3:
        attributes.append(affirming_attribute(uid()))
    record: dict[str, Any] = {
        "id": uid(),
        "name": name,
        "status": "active",
        "description": f"{description}. Run by volunteers in {district}, {city}.",
        "languages": [
            {"id": uid(), "code": lang, "name": lang_name}
            for lang, lang_name in rng.sample(LANGUAGES, rng.randint(1, 3))
        ],
        "attributes": attributes,
        "service_areas": [{"id": uid(), "name": f"{district} {city}", "description": city}],
        "service_at_locations": [
            {
                "id": uid(),
                "location": {
                    "id": uid(),
                    "location_type": "physical",
                    "latitude": latitude + rng.uniform(-0.15, 0.15),
                    "longitude": longitude + rng.uniform(-0.25, 0.25),
                },
            }
        ],
    }
    if rng.random() < 0.5:
        low = rng.choice([0, 5, 11, 16, 18, 25])
        record |= {"minimum_age": low, "maximum_age": low + rng.choice([5, 10, 20, 60])}
    return record


def capacity_entry(rng: random.Random, record: dict[str, Any]) -> ServiceCapacity:
    return ServiceCapacity(
        service_id=record["id"],
        name=record["name"],
        service=record,
        status=rng.choice(CAPACITY_STATUSES),
        accepting_referrals=rng.random() < 0.7,
        intake_fields=("given_name", "phone"),
        updated_at=format_timestamp(NOW - rng.randint(0, 90 * DAY)),
        verified_at=format_timestamp(NOW - rng.randint(0, 30 * DAY))
        if rng.random() < 0.6
        else None,
        wait_days=rng.choice([None, 0, 3, 7, 14, 30]),
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
            entries = [capacity_entry(rng, service_record(rng, n)) for n in range(per_peer)]
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
            text=rng.choice(words[:5]), language=rng.choice(LANGUAGES)[rng.randint(0, 1)]
        ),
        "category + accepting": lambda: DirectoryQuery(
            categories=(rng.choice(TOPICS)[0],), accepting=True
        ),
        "near a point (10 km)": lambda: DirectoryQuery(
            near=rng.choice(list(CITIES.values())), radius_km=10
        ),
        "affirming + age": lambda: DirectoryQuery(affirming=True, age=rng.randint(10, 40)),
        "no filter": lambda: DirectoryQuery(),
    }


def bench_search(node: Node, iterations: int) -> list[Timings]:
    """Time each query kind in turn, ``iterations`` rounds, after one warm-up round."""
    rng = random.Random(7)
    kinds = search_queries(rng)
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
        yield lambda name: f"sqlite:///{home / name}.db"
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


def run(kind: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder, database(kind, Path(folder)) as urls:
        federation = Federation(Path(folder), urls, TestClock())
        try:
            node = federation.add("searcher", "community-network").node
            started = time.perf_counter()
            build_directory(node, args.peers, args.services)
            total = args.peers * args.services
            print(f"\n{kind}: stored {total:,} services from {args.peers} peers "
                  f"in {time.perf_counter() - started:.1f} s (untimed)")  # fmt: skip
            timings = bench_search(node, args.iterations)
            for timing in timings:
                print("  search " + timing.line())
            overall = timings[-1].percentile(0.95)
            verdict = "met" if overall < SEARCH_TARGET_P95_MS else "NOT met"
            print(f"  search p95 over all kinds {overall:.2f} ms: target < 25 ms {verdict}")
        finally:
            federation.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--services", type=int, default=200, help="services per peer")
    parser.add_argument("--iterations", type=int, default=100, help="rounds of each query kind")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("EXCHANGE_TEST_DATABASE_URL") else [])
    for kind in kinds:
        run(kind, args)


if __name__ == "__main__":
    main()
