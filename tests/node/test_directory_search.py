"""Federated search over the directory held locally: each filter, ranking, staleness, trust."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from exchange_node.db.models import PeerDirectory, PeerStatus
from exchange_node.errors import InvalidRequestError
from exchange_node.hsds import affirming_attribute
from exchange_node.protocol.capacity import ServiceCapacity
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import peers
from exchange_node.services.directory_index import replace_peer_services
from exchange_node.services.directory_search import DirectoryQuery, SearchPage, search
from tests.node.conftest import Federation, TestNode, hsds_service

DAY = 86_400


def offer(
    name: str,
    *,
    status: str = "capacity",
    accepting: bool = True,
    verified_days_ago: int | None = None,
    updated_days_ago: int = 0,
    wait_days: int | None = None,
    hsds_status: str = "active",
    now: int,
    **members: Any,
) -> ServiceCapacity:
    """A peer's service as a verified capacity document carries it."""
    record = hsds_service(name, **members) | {"status": hsds_status}
    verified = None if verified_days_ago is None else now - verified_days_ago * DAY
    return ServiceCapacity(
        service_id=record["id"],
        name=name,
        service=record,
        status=status,
        accepting_referrals=accepting,
        intake_fields=("given_name", "phone"),
        updated_at=format_timestamp(now - updated_days_ago * DAY),
        wait_days=wait_days,
        verified_at=None if verified is None else format_timestamp(verified),
    )


def stock(
    searcher: TestNode, peer_url: str, services: Sequence[ServiceCapacity], *, expires_in: int = DAY
) -> None:
    """What ``searcher`` holds of the peer at ``peer_url``: these services, a document expiring
    ``expires_in`` seconds from now (None: no document held)."""
    now = searcher.node.now()
    with searcher.node.database.session() as session:
        peer = peers.get_peer(session, peer_url)
        replace_peer_services(session, peer, services)
        session.merge(PeerDirectory(peer_id=peer.id, version=1, expires_at=now + expires_in))


def find(searcher: TestNode, **criteria: Any) -> SearchPage:
    with searcher.node.database.session() as session:
        return search(session, DirectoryQuery(**criteria), now=searcher.node.now())


def names(searcher: TestNode, **criteria: Any) -> list[str]:
    return [result.name for result in find(searcher, **criteria).results]


def language(name: str, code: str) -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "name": name, "code": code}


def term(code: str, name: str) -> dict[str, Any]:
    term_id = str(uuid.uuid4())
    return {
        "id": str(uuid.uuid4()),
        "taxonomy_term_id": term_id,
        "taxonomy_term": {"id": term_id, "code": code, "name": name, "description": name},
    }


def located(latitude: float, longitude: float) -> list[dict[str, Any]]:
    location = {"id": str(uuid.uuid4()), "location_type": "physical"}
    location |= {"latitude": latitude, "longitude": longitude}
    return [{"id": str(uuid.uuid4()), "location": location}]


def area(name: str) -> list[dict[str, str]]:
    return [{"id": str(uuid.uuid4()), "name": name, "description": f"The {name} area"}]


@pytest.fixture
def directory(community: TestNode, clinic: TestNode) -> TestNode:
    """The community holds six of the clinic's services, one per facet."""
    now = community.node.now()
    stock(
        community,
        clinic.url,
        [
            offer(
                "Youth sexual health drop-in",
                description="Confidential sexual health care for young people.",
                languages=[language("Arabic", "ar"), language("English", "en")],
                minimum_age=13,
                maximum_age=25,
                attributes=[affirming_attribute(str(uuid.uuid4())), term("health", "Health")],
                now=now,
            ),
            offer(
                "استشارة نفسية",
                description="Counselling in Arabic: جلسات استشارة فردية",
                languages=[language("Arabic", "ar")],
                status="waitlist",
                wait_days=14,
                now=now,
            ),
            offer(
                "Tenancy legal clinic",
                description="Advice on evictions and repairs.",
                attributes=[term("legal", "Legal aid"), term("housing", "Housing")],
                service_areas=area("Northside"),
                minimum_age=18,
                now=now,
            ),
            offer(
                "Family counselling",
                description="Counselling for families, in Northside and beyond.",
                maximum_age=17,
                service_at_locations=located(51.5074, -0.1278),
                status="no-capacity",
                accepting=False,
                now=now,
            ),
            offer(
                "Food bank",
                description="Weekly food parcels.",
                service_at_locations=located(51.7520, -1.2577),
                status="additional-assessment-required",
                now=now,
            ),
            offer("Closed programme", description="Counselling.", hsds_status="defunct", now=now),
        ],
    )
    return community


def test_without_criteria_every_service_of_trusted_peers_is_found(directory: TestNode) -> None:
    page = find(directory)
    assert page.total == 5  # not the defunct one
    assert len(page.results) == 5
    first = page.results[0]
    assert first.peer_entity_id == "https://clinic.example"
    assert first.peer_organization == "Clinic"
    assert first.peer_kind == "clinic"
    assert first.intake_fields == ["given_name", "phone"]
    assert not first.stale


TEXT_MATCHES = [
    ("counselling", ["Family counselling", "استشارة نفسية"]),  # name or description
    ("COUNSEL", ["Family counselling", "استشارة نفسية"]),  # a prefix, any case
    ("counselling families", ["Family counselling"]),  # every word
    ("استشارة", ["استشارة نفسية"]),  # Arabic, in the name
    ("جلس", ["استشارة نفسية"]),  # an Arabic prefix, in the description
    ("اسْتِشَارَة", ["استشارة نفسية"]),  # written with short vowels
    ("إستشاره", ["استشارة نفسية"]),  # alef with hamza, heh for teh marbuta
    ("نفسيـة", ["استشارة نفسية"]),  # a tatweel stretching the word
    ("counsellíng", ["Family counselling", "استشارة نفسية"]),  # an accent typed by mistake
    ("northside", ["Family counselling", "Tenancy legal clinic"]),  # areas too
    ("dentist", []),
]


def test_text_matches_every_word_as_a_prefix(directory: TestNode) -> None:
    for text, found in TEXT_MATCHES:
        assert sorted(names(directory, text=text)) == sorted(found), text


QUERY_SYNTAX = [
    'counselling" OR "food',
    "counselling OR food",
    "NEAR(counselling food)",
    "food*",
    "name:counselling food",
    "counselling AND NOT food",
    "food : *",
    "food' | 'counselling",
    "food:* | counselling:*",
    "food\\",
    "-food",
    "^food",
    "(food",
]


def test_query_syntax_in_the_text_is_taken_as_words(directory: TestNode) -> None:
    """No operator reaches the full-text engine: each text asks for every word it holds."""
    for text in QUERY_SYNTAX:
        expected = [] if "counselling" in text else ["Food bank"]  # no service has both words
        assert names(directory, text=text) == expected, text


NOT_SEARCHABLE = [
    ("*", "has no letters or digits to search for"),
    ('" " ( ) : *', "has no letters or digits to search for"),
    ("x" * 201, "at most 200 characters"),
    (" ".join(["word"] * 11), "at most 10 words"),
]


def test_text_without_words_or_too_long_is_refused(directory: TestNode) -> None:
    for text, reason in NOT_SEARCHABLE:
        with pytest.raises(InvalidRequestError) as raised:
            find(directory, text=text)
        assert raised.value.fields == {"/q": [reason]}


def test_categories_match_a_term_code_or_name_and_any_of_several(directory: TestNode) -> None:
    assert names(directory, categories=("legal",)) == ["Tenancy legal clinic"]
    assert names(directory, categories=("Legal Aid",)) == ["Tenancy legal clinic"]
    assert sorted(names(directory, categories=("housing", "health"))) == [
        "Tenancy legal clinic",
        "Youth sexual health drop-in",
    ]
    assert names(directory, categories=("legal aid services",)) == []


def test_language_matches_a_code_or_a_name(directory: TestNode) -> None:
    arabic = ["Youth sexual health drop-in", "استشارة نفسية"]
    assert sorted(names(directory, language="ar")) == sorted(arabic)
    assert sorted(names(directory, language=" Arabic ")) == sorted(arabic)
    assert names(directory, language="EN") == ["Youth sexual health drop-in"]
    assert names(directory, language="fr") == []


AGES = [
    (12, ["Family counselling"]),
    (13, ["Family counselling", "Youth sexual health drop-in"]),
    (17, ["Family counselling", "Youth sexual health drop-in"]),
    (18, ["Tenancy legal clinic", "Youth sexual health drop-in"]),
    (25, ["Tenancy legal clinic", "Youth sexual health drop-in"]),
    (26, ["Tenancy legal clinic"]),
]


def test_age_is_inside_the_published_range_with_missing_bounds_open(directory: TestNode) -> None:
    unbounded = ["Food bank", "استشارة نفسية"]  # no ages published: for everyone
    for age, found in AGES:
        assert sorted(names(directory, age=age)) == sorted(found + unbounded), age


def test_area_looks_only_in_service_areas(directory: TestNode) -> None:
    assert names(directory, area="North") == ["Tenancy legal clinic"]  # not the description
    assert names(directory, area="northside", text="evictions") == ["Tenancy legal clinic"]
    assert names(directory, area="southside") == []


def test_distance_from_a_point_keeps_services_within_the_radius(directory: TestNode) -> None:
    near_london = find(directory, near=(51.5155, -0.0922), radius_km=5)  # the City
    assert [r.name for r in near_london.results] == ["Family counselling"]
    assert near_london.results[0].distance_km == pytest.approx(2.6, abs=0.1)
    assert near_london.total == 1
    both = find(directory, near=(51.5155, -0.0922), radius_km=90)  # Oxford is 85 km away
    assert [r.name for r in both.results] == ["Food bank", "Family counselling"]  # by rank
    assert both.results[0].distance_km == pytest.approx(84.7, abs=0.5)
    assert names(directory, near=(51.5155, -0.0922), radius_km=84) == ["Family counselling"]
    assert names(directory, near=(48.8566, 2.3522), radius_km=300) == []  # Paris


def test_distance_uses_the_circle_not_its_bounding_box(
    community: TestNode, clinic: TestNode
) -> None:
    now = community.node.now()
    stock(community, clinic.url, [offer("Corner", service_at_locations=located(0.6, 0.6), now=now)])
    # (0.6, 0.6) is inside the box of 75 km around (0, 0), but 94 km away.
    assert names(community, near=(0.0, 0.0), radius_km=75) == []
    assert names(community, near=(0.0, 0.0), radius_km=95) == ["Corner"]


def test_distance_across_the_antimeridian(community: TestNode, clinic: TestNode) -> None:
    now = community.node.now()
    stock(
        community, clinic.url, [offer("Fiji", service_at_locations=located(-17.0, 179.9), now=now)]
    )
    assert names(community, near=(-17.0, -179.9), radius_km=30) == ["Fiji"]
    assert names(community, near=(-17.0, 179.0), radius_km=30) == []


def test_capacity_status_accepting_and_affirming(directory: TestNode) -> None:
    assert names(directory, statuses=("waitlist",)) == ["استشارة نفسية"]
    assert sorted(names(directory, statuses=("no-capacity", "waitlist"))) == [
        "Family counselling",
        "استشارة نفسية",
    ]
    assert names(directory, accepting=False) == ["Family counselling"]
    assert "Family counselling" not in names(directory, accepting=True)
    assert len(names(directory, accepting=True)) == 4
    assert names(directory, affirming=True) == ["Youth sexual health drop-in"]
    assert len(names(directory, affirming=False)) == 4


def test_filters_combine(directory: TestNode) -> None:
    assert names(directory, language="ar", affirming=True, age=16, accepting=True) == [
        "Youth sexual health drop-in"
    ]
    assert names(directory, language="ar", affirming=True, age=30) == []
    assert names(directory, text="counselling", statuses=("waitlist",)) == ["استشارة نفسية"]
    assert names(directory, text="counselling", near=(51.5, -0.12), radius_km=10) == [
        "Family counselling"
    ]


def test_peer_kind(federation: Federation, community: TestNode, clinic: TestNode) -> None:
    school = federation.add("school", "school")
    federation.peer(community, school)
    now = community.node.now()
    stock(community, clinic.url, [offer("Clinic service", now=now)])
    stock(community, school.url, [offer("After-school club", now=now)])
    assert names(community, peer_kind="school") == ["After-school club"]
    assert names(community, peer_kind="clinic") == ["Clinic service"]
    assert names(community, peer_kind="legal-aid") == []


def test_accepting_with_capacity_first_then_waiting_then_the_rest(directory: TestNode) -> None:
    assert names(directory) == [
        "Tenancy legal clinic",  # capacity, accepting: by name, all updated now
        "Youth sexual health drop-in",
        "Food bank",  # accepting, after an assessment
        "استشارة نفسية",  # accepting, waitlist
        "Family counselling",  # not accepting
    ]


def test_fresher_first_by_verification_then_update(community: TestNode, clinic: TestNode) -> None:
    now = community.node.now()
    stock(
        community,
        clinic.url,
        [
            offer("Verified a week ago", verified_days_ago=7, now=now),
            offer("Updated two days ago", updated_days_ago=2, now=now),
            offer(
                "Verified today, updated long ago",
                verified_days_ago=0,
                updated_days_ago=90,
                now=now,
            ),
            offer("Full, verified today", status="no-capacity", verified_days_ago=0, now=now),
        ],
    )
    page = find(community)
    assert [r.name for r in page.results] == [
        "Verified today, updated long ago",
        "Updated two days ago",
        "Verified a week ago",
        "Full, verified today",
    ]
    assert [r.verified_days_ago for r in page.results] == [0, None, 7, 0]


def test_expired_documents_make_services_stale_and_rank_them_last(
    federation: Federation, community: TestNode, clinic: TestNode, clock: Any
) -> None:
    school = federation.add("school", "school")
    federation.peer(community, school)
    now = community.node.now()
    stock(
        community,
        clinic.url,
        [offer("Clinic, fresh", updated_days_ago=1, now=now)],
        expires_in=2 * DAY,
    )
    stock(community, school.url, [offer("School, verified", verified_days_ago=0, now=now)])
    assert names(community) == ["School, verified", "Clinic, fresh"]
    clock.advance(DAY)  # the school's document expires now
    page = find(community)
    assert [(r.name, r.stale) for r in page.results] == [
        ("Clinic, fresh", False),
        ("School, verified", True),
    ]
    assert page.results[1].stale_since == now + DAY
    assert page.results[0].stale_since is None


def test_services_of_a_peer_without_a_held_document_are_stale(
    community: TestNode, clinic: TestNode
) -> None:
    stock(community, clinic.url, [offer("Held", now=community.node.now())])
    with community.node.database.session() as session:
        session.query(PeerDirectory).delete()
    [result] = find(community).results
    assert result.stale
    assert result.stale_since is None  # it never expired: nothing was held


def test_only_trusted_peers_services_are_found(
    federation: Federation, community: TestNode, clinic: TestNode
) -> None:
    now = community.node.now()
    stock(community, clinic.url, [offer("Clinic service", now=now)])
    school = federation.add("school", "school")  # asks the community to peer: pending there
    with school.node.database.session() as session:
        peers.add_peer(school.node, session, community.url, community.thumbprint)
    stock(community, school.url, [offer("Pending peer's service", now=now)])
    assert names(community) == ["Clinic service"]
    for status, found in [
        (PeerStatus.SUSPENDED, []),
        (PeerStatus.TRUSTED, ["Clinic service"]),
        (PeerStatus.REMOVED, []),
    ]:
        with community.node.database.session() as session:
            peers.change_status(community.node, session, clinic.url, status)
        assert names(community) == found


def test_pages_carry_the_total(community: TestNode, clinic: TestNode) -> None:
    now = community.node.now()
    stock(community, clinic.url, [offer(f"Service {n:02}", now=now) for n in range(25)])
    first = find(community, limit=10)
    assert first.total == 25
    assert [r.name for r in first.results] == [f"Service {n:02}" for n in range(10)]
    last = find(community, limit=10, offset=20)
    assert [r.name for r in last.results] == [f"Service {n:02}" for n in range(20, 25)]
    assert last.total == 25
    beyond = find(community, limit=10, offset=30)
    assert (beyond.results, beyond.total) == ((), 25)
    assert find(community, text="service", limit=5, offset=40).total == 25


@pytest.mark.parametrize("text", [None, "service"])
def test_pages_run_on_from_fresh_to_stale_services(
    federation: Federation, community: TestNode, clinic: TestNode, text: str | None
) -> None:
    """Fresh and stale services are paged apart; the pages join without a gap or a repeat."""
    school = federation.add("school", "school")
    federation.peer(community, school)
    now = community.node.now()
    stock(community, clinic.url, [offer(f"Fresh service {n}", now=now) for n in range(7)])
    stock(
        community,
        school.url,
        [offer(f"Stale service {n}", now=now) for n in range(6)],
        expires_in=-1,
    )
    pages = [find(community, text=text, limit=4, offset=offset) for offset in (0, 4, 8, 12, 16)]
    assert {page.total for page in pages} == {13}
    seen = [(r.name, r.stale) for page in pages for r in page.results]
    assert seen == [(f"Fresh service {n}", False) for n in range(7)] + [
        (f"Stale service {n}", True) for n in range(6)
    ]


OUT_OF_RANGE: list[tuple[dict[str, Any], str]] = [
    ({"age": -1}, "/age"),
    ({"age": 201}, "/age"),
    ({"limit": 0}, "/limit"),
    ({"limit": 101}, "/limit"),
    ({"offset": -1}, "/offset"),
    ({"offset": 10_001}, "/offset"),
    ({"near": (91.0, 0.0)}, "/near"),
    ({"near": (0.0, 181.0)}, "/near"),
    ({"near": (0.0, 0.0), "radius_km": 0}, "/radius_km"),
    ({"near": (0.0, 0.0), "radius_km": 501}, "/radius_km"),
    ({"statuses": ("capacity", "open")}, "/status"),
    ({"peer_kind": "hospital"}, "/peer_kind"),
    ({"language": " "}, "/language"),
    ({"categories": ("x" * 256,)}, "/category"),
    ({"categories": tuple("abcdefghijk")}, "/category"),
    ({"area": "!!"}, "/area"),
]


def test_out_of_range_criteria_are_refused_by_name(directory: TestNode) -> None:
    for criteria, pointer in OUT_OF_RANGE:
        with pytest.raises(InvalidRequestError) as raised:
            find(directory, **criteria)
        assert list(raised.value.fields) == [pointer], criteria
        assert raised.value.detail.startswith(pointer[1:] + ": ")
