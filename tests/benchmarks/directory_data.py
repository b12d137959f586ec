"""Realistic services, nodes, timing and options shared by the directory benchmarks.

Used by :mod:`tests.benchmarks.bench_directory` (search, and the entry point of all
three) and :mod:`tests.benchmarks.bench_directory_sync` (sync; signing and serving);
not a benchmark itself and not part of the test suite. It holds the vocabulary
(topics, Arabic names, languages, cities ...), the one generator of HSDS 3.1 services
(:func:`service_fields`; as a peer publishes it, :func:`service_record`), the one
generator of capacity (:func:`capacity_change`), a federation of test nodes in a
folder, the percentile and timing helpers, the machine line, and the options and
run loop both entry points share. It starts no server and measures nothing itself.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from exchange_node.db.models import CapacityStatus
from exchange_node.node import Node
from exchange_node.services import catalog
from exchange_node.services.service_capacity import CapacityChange, CapacityNumbers, set_capacity
from exchange_node.services.service_locations import PhysicalLocation, SafeLocation
from exchange_node.services.service_records import Publisher, ServiceFields, Term, apply_fields
from tests.node.conftest import Federation, TestClock

T = TypeVar("T")


class City(NamedTuple):
    county: str
    postcode: str
    latitude: float
    longitude: float


#: (code, name, description) of a service's category.
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
#: (name, description) of the services named in Arabic.
ARABIC = [
    ("استشارة نفسية", "جلسات استشارة فردية وعائلية"),
    ("مساعدة قانونية", "نصائح قانونية مجانية حول السكن والهجرة"),
    ("بنك الطعام", "طرود غذائية أسبوعية للعائلات"),
    ("دعم الشباب", "أنشطة وإرشاد للشباب"),
]
QUALIFIERS = ["Community", "Family", "Youth", "Women's", "Drop-in", "Evening", "Outreach", "Rapid"]
LANGUAGES = [Term("en", "English"), Term("ar", "Arabic"), Term("fr", "French"),
             Term("so", "Somali"), Term("ur", "Urdu"), Term("pl", "Polish"),
             Term("es", "Spanish"), Term("fa", "Persian")]  # fmt: skip
CITIES = {
    "London": City("Greater London", "E1 6AN", 51.5074, -0.1278),
    "Manchester": City("Greater Manchester", "M1 1AE", 53.4808, -2.2426),
    "Birmingham": City("West Midlands", "B1 1BB", 52.4862, -1.8904),
    "Leeds": City("West Yorkshire", "LS1 4AP", 53.8008, -1.5491),
    "Bristol": City("Bristol", "BS1 4DJ", 51.4545, -2.5879),
    "Glasgow": City("Glasgow City", "G1 1XQ", 55.8642, -4.2518),
}
DISTRICTS = ["Northside", "Southbank", "Eastgate", "Westfield", "Old Town", "Riverside"]
STREETS = ["Park Row", "High Street", "Station Road", "Church Lane", "Mill Street"]
INTAKE = ("given_name", "phone", "preferred_language", "needs_summary", "age", "pronouns")
UNITS = ("appointments this week", "beds", "places")
NOTES = (None, "Call before referring.", "Evening slots only; interpreters on request.")


# Services and their capacity -------------------------------------------------------------


def service_fields(rng: random.Random, n: int) -> ServiceFields:
    """A realistic service: a topic (some named in Arabic), languages, maybe ages, an area,
    contact routes, a place around a city (or a safe one), maybe affirming."""
    code, topic, description = rng.choice(TOPICS)
    name = f"{rng.choice(QUALIFIERS)} {topic.lower()} service {n}"
    if rng.random() < 0.15:
        name, description = rng.choice(ARABIC)
        name = f"{name} {n}"
    city, district = rng.choice(list(CITIES)), rng.choice(DISTRICTS)
    fields = ServiceFields(
        name=name,
        description=f"{description}. Run by volunteers in {district}, {city}.",
        languages=tuple(rng.sample(LANGUAGES, rng.randint(1, 3))),
        areas=(f"{district} {city}", city),
        categories=(Term(code, topic),),
        affirming=rng.random() < 0.3,
        email=f"intake{n}@services.example",
        phone=f"+44 113 000 {n:04d}",
        url=f"https://services.example/{code}/{n}",
        locations=(location(rng, city, n),),
    )
    if rng.random() < 0.5:
        low = rng.choice([0, 5, 11, 16, 18, 25])
        high = low + rng.choice([5, 10, 20, 60])
        eligibility = f"People aged {low} to {high} living in {city}."
        fields = replace(
            fields, minimum_age=low, maximum_age=high, eligibility_description=eligibility
        )
    return fields


def location(rng: random.Random, city: str, n: int) -> PhysicalLocation | SafeLocation:
    """A point around ``city``'s centre with its address; one in ten a safe location."""
    if rng.random() < 0.1:
        return SafeLocation(f"Safe space {n}", phone=f"+44 113 100 {n:04d}")
    county, postcode, latitude, longitude = CITIES[city]
    return PhysicalLocation(
        name=f"{city} centre",
        address_1=f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
        city=city,
        state_province=county,
        postal_code=postcode,
        country="GB",
        latitude=round(latitude + rng.uniform(-0.15, 0.15), 5),
        longitude=round(longitude + rng.uniform(-0.25, 0.25), 5),
    )


def service_record(rng: random.Random, n: int, publisher: Publisher) -> dict[str, Any]:
    """The HSDS 3.1 record of :func:`service_fields` as ``publisher``'s catalog builds it."""
    fields = replace(service_fields(rng, n), status="active", organization=publisher.name)
    return apply_fields({"id": str(uuid.uuid4()), "name": ""}, fields, publisher)


def capacity_change(rng: random.Random) -> CapacityChange:
    """A verified capacity: any status, a wait, notes, intake fields, a count of places."""
    status = rng.choice(list(CapacityStatus))
    return CapacityChange(
        status=status.value,
        accepting_referrals=status != CapacityStatus.NO_CAPACITY,
        wait_days=rng.choice((None, 0, 7, 21)),
        notes=rng.choice(NOTES),
        intake_fields=tuple(rng.sample(INTAKE, rng.randint(1, 4))),
        numbers=(CapacityNumbers(rng.choice(UNITS), float(rng.randint(0, 12)), 12.0),),
        verified=True,
    )


def add_services(node: Node, rng: random.Random, count: int) -> None:
    """``count`` services with their capacity, through the catalog, in one transaction."""
    with node.database.session() as session:
        for n in range(count):
            service = catalog.add_service_from_fields(node, session, service_fields(rng, n))
            set_capacity(session, service.id, capacity_change(rng), node.now())


# Nodes ---------------------------------------------------------------------------------


class SystemClock(TestClock):
    """The real clock: documents and request signatures cross processes."""

    def __call__(self) -> int:
        return int(time.time())


def sqlite_file(home: Path, name: str) -> str:
    """The database URL of node ``name``: a SQLite file in ``home``."""
    return f"sqlite:///{home / name}.db"


@contextmanager
def federation_in(
    home: Path, urls: Callable[[str], str] | None = None, clock: TestClock | None = None
) -> Iterator[Federation]:
    """Nodes in ``home``: SQLite files there (or ``urls`` by node name), the real clock."""
    federation = Federation(home, urls or partial(sqlite_file, home), clock or SystemClock())
    try:
        yield federation
    finally:
        federation.close()


# Timing ----------------------------------------------------------------------------------


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """Seconds ``action`` took, and what it returned."""
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Timings:
    """Latencies of one kind of operation, in milliseconds."""

    name: str
    milliseconds: list[float]

    def percentile(self, fraction: float) -> float:
        return percentile(self.milliseconds, fraction)

    def line(self) -> str:
        return (
            f"{self.name:24s} p50 {self.percentile(0.5):6.2f} ms  "
            f"p95 {self.percentile(0.95):6.2f} ms  max {max(self.milliseconds):6.2f} ms  "
            f"(n={len(self.milliseconds)})"
        )


def machine() -> str:
    return (
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def run_parts(only: str | None, parts: Mapping[str, Callable[[], object]]) -> None:
    """Print the machine, run every part (or ``only`` that one), then the wall time."""
    started = time.perf_counter()
    print(machine())
    for name, part in parts.items():
        if only in (None, name):
            part()
    print(f"\nwhole benchmark: {time.perf_counter() - started:.1f} s")


# Entry points ----------------------------------------------------------------------------


def requests_count(text: str) -> int:
    count = int(text)
    if not 0 < count <= 2000:  # signed up front, for a 60 s signature window
        raise argparse.ArgumentTypeError("must be 1 to 2000")
    return count


def benchmark_parser(description: str, parts: Sequence[str]) -> argparse.ArgumentParser:
    """``--only`` one of ``parts``, and the options of the sync and signing benchmarks."""
    parser = argparse.ArgumentParser(description=description)
    add = parser.add_argument
    add("--only", choices=parts, help="run one benchmark")
    add("--peers", type=int, default=100, help="peers in the directory (searched or synced)")
    add("--rounds", type=int, default=5, help="unchanged sync rounds per concurrency")
    add("--server-processes", type=int, help="processes serving the synced peers")
    add("--profile", action="store_true", help="profile one sync round")
    add("--services", type=int, default=200, help="services per peer (searched or signed)")
    add("--runs", type=int, default=20, help="re-signs and verifications")
    add("--requests", type=requests_count, default=300, help="GETs per kind (200, 304)")
    return parser
