"""HSDS 3.1 locations of a service: a physical place, or a safe location with no address.

A :class:`SafeLocation` (a shelter, a safe space) is published as an HSDS ``virtual``
location carrying only a contact route (phone, email or url) and no address or
coordinates. What is published is how to reach the service, not where it is, which is
what HSDS 3.1 means by ``virtual``; a ``physical`` location without an address would
invite tools to look for one, and search would place it nowhere anyway. The address is
given to a person only after contact, outside this exchange. Nothing here does I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exchange_node.errors import InvalidRequestError

__all__ = [
    "SAFE_LOCATION_DESCRIPTION",
    "PhysicalLocation",
    "SafeLocation",
    "service_at_locations",
]

SAFE_LOCATION_DESCRIPTION = (
    "Confidential location: the address is shared only with people referred, after contact."
)


@dataclass(frozen=True)
class PhysicalLocation:
    """A place people go to; an address needs every part HSDS requires."""

    name: str | None = None
    address_1: str | None = None
    address_2: str | None = None
    city: str | None = None
    state_province: str | None = None
    postal_code: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class SafeLocation:
    """A place whose address is never published: only a contact route (phone, email, url)."""

    name: str
    phone: str | None = None
    email: str | None = None
    url: str | None = None
    description: str = SAFE_LOCATION_DESCRIPTION


def service_at_locations(
    locations: Sequence[PhysicalLocation | SafeLocation],
) -> list[dict[str, Any]]:
    """HSDS ``service_at_location`` objects, each holding its location.

    Raises:
        InvalidRequestError: half a coordinate pair, coordinates out of range, an
            incomplete address, or a safe location without a contact route.
    """
    built = [
        _safe_location(place, i)
        if isinstance(place, SafeLocation)
        else _physical_location(place, i)
        for i, place in enumerate(locations)
    ]
    return [{"id": _new_id(), "location_id": place["id"], "location": place} for place in built]


def _new_id() -> str:
    return str(uuid.uuid4())


def _physical_location(place: PhysicalLocation, index: int) -> dict[str, Any]:
    where = f"/service_at_locations/{index}/location"
    location: dict[str, Any] = {"id": _new_id(), "location_type": "physical"}
    if place.name:
        location["name"] = place.name
    if (place.latitude is None) != (place.longitude is None):
        raise InvalidRequestError(
            "a location needs both latitude and longitude, or neither",
            {f"{where}/latitude": "pair"},
        )
    if place.latitude is not None and place.longitude is not None:
        if not (-90 <= place.latitude <= 90 and -180 <= place.longitude <= 180):
            raise InvalidRequestError(
                "latitude is -90 to 90 and longitude -180 to 180", {f"{where}/latitude": "range"}
            )
        location |= {"latitude": place.latitude, "longitude": place.longitude}
    address = {
        "address_1": place.address_1,
        "address_2": place.address_2,
        "city": place.city,
        "state_province": place.state_province,
        "postal_code": place.postal_code,
        "country": place.country,
    }
    if any(address.values()):
        missing = [k for k, v in address.items() if not v and k != "address_2"]
        if missing:
            raise InvalidRequestError(
                f"an address needs {', '.join(missing)} too (HSDS 3.1 requires them)",
                {f"{where}/addresses/0/{name}": "required" for name in missing},
            )
        present = {k: v for k, v in address.items() if v}
        location["addresses"] = [{"id": _new_id(), **present, "address_type": "physical"}]
    return location


def _safe_location(place: SafeLocation, index: int) -> dict[str, Any]:
    if not (place.phone or place.email or place.url):
        raise InvalidRequestError(
            "a safe location needs a contact route: a phone, an email or a url",
            {f"/service_at_locations/{index}/location/contacts": "no contact route"},
        )
    location: dict[str, Any] = {
        "id": _new_id(),
        "location_type": "virtual",
        "name": place.name,
        "description": place.description,
    }
    if place.url:
        location["url"] = place.url
    if place.phone:
        location["phones"] = [{"id": _new_id(), "number": place.phone}]
    if place.email:
        location["contacts"] = [{"id": _new_id(), "name": place.name, "email": place.email}]
    return location
