"""Points and distances for directory search: parsing LAT,LON, bounding boxes, haversine.

The box is what SQL can filter on with plain comparisons (it is a superset of the
circle, split in two across the antimeridian); the exact great-circle distance is
then computed for the few candidates. Nothing here touches the database.
"""

from __future__ import annotations

import math
from typing import Any

from exchange_node.errors import InvalidRequestError

#: Mean Earth radius (IUGG), in kilometres.
EARTH_RADIUS_KM = 6371.0088


def parse_point(value: str) -> tuple[float, float]:
    """``"LAT,LON"`` as numbers (ranges are checked by :func:`search`).

    Raises:
        InvalidRequestError: not two numbers separated by a comma.
    """
    parts = value.split(",")
    try:
        latitude, longitude = (float(part) for part in parts)
    except ValueError:
        latitude = longitude = math.nan
    if len(parts) != 2 or not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise InvalidRequestError(
            "near must be LAT,LON in decimal degrees, like 51.5,-0.12",
            {"/near": ["must be two numbers: latitude,longitude"]},
        )
    return latitude, longitude


def bounding_box(
    latitude: float, longitude: float, radius_km: float
) -> tuple[float, float, float, float]:
    """South, north, west, east in degrees; west > east when it crosses the antimeridian."""
    degrees = math.degrees(radius_km / EARTH_RADIUS_KM)
    south, north = max(-90.0, latitude - degrees), min(90.0, latitude + degrees)
    if south == -90.0 or north == 90.0:
        return south, north, -180.0, 180.0
    spread = math.degrees(
        math.asin(
            min(1.0, math.sin(radius_km / EARTH_RADIUS_KM) / math.cos(math.radians(latitude)))
        )
    )
    west, east = longitude - spread, longitude + spread
    if spread >= 90.0:
        return south, north, -180.0, 180.0
    return south, north, (west + 540.0) % 360.0 - 180.0, (east + 540.0) % 360.0 - 180.0


def longitude_ranges(longitude: Any, west: float, east: float) -> list[Any]:
    """Conditions on a longitude column, one of which holds inside the box (OR them)."""
    if west <= east:
        return [longitude.between(west, east)]
    return [longitude >= west, longitude <= east]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_chord = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(half_chord)))


__all__ = ["EARTH_RADIUS_KM", "bounding_box", "haversine_km", "longitude_ranges", "parse_point"]
