"""The OpenAPI document: up to date, well formed, complete, and true to what the app answers."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from exchange_node import __version__
from exchange_node.cli.openapi import openapi
from exchange_node.openapi import build_openapi, render_openapi
from exchange_node.protocol.errors import PROBLEM_CONTENT_TYPE
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.statements import PEERING_REQUEST_MEDIA_TYPE, sign_peering_request
from exchange_node.services import catalog, clients
from exchange_node.web.oauth import TOKEN_PATH
from exchange_node.web.ui_pages import PAGE_BLUEPRINTS
from tests.conftest import NOW
from tests.node import conftest as nodes  # as a module: pytest would collect its Test* classes
from tests.node.test_oauth import get_token

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT_PATH = ROOT / "schemas" / "openapi.json"
REGENERATE = "run `exchange-node openapi --output schemas/openapi.json`"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
FLASK_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi()


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[nodes.Federation]:
    federation = nodes.Federation(
        tmp_path, lambda name: f"sqlite:///{tmp_path / name}.db", nodes.TestClock()
    )
    yield federation
    federation.close()


@pytest.fixture
def clinic(federation: nodes.Federation) -> nodes.TestNode:
    return federation.add("clinic")


@pytest.fixture
def app(clinic: nodes.TestNode) -> Flask:
    return clinic.app


# --- (a) the committed file is what the code builds ------------------------------


def test_committed_document_is_up_to_date(document: dict[str, Any]) -> None:
    committed = DOCUMENT_PATH.read_text(encoding="utf-8") if DOCUMENT_PATH.exists() else ""
    assert committed == render_openapi(document), (
        f"schemas/openapi.json is out of date: {REGENERATE}"
    )


def test_document_is_built_the_same_every_time(document: dict[str, Any]) -> None:
    assert render_openapi(build_openapi()) == render_openapi(document)


# --- (b) structure ------------------------------------------------------------------


def test_document_is_openapi_3_1_of_this_version(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "exchange-node"
    assert document["info"]["version"] == __version__
    assert document["servers"]


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = [node["$ref"] for node in walk(document) if "$ref" in node]
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), f"{ref}: only references inside the document"
        resolve(document, ref)


def test_every_operation_is_described_and_answers(document: dict[str, Any]) -> None:
    tags = {tag["name"] for tag in document["tags"]}
    operation_ids = []
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation["summary"], where
        assert operation["description"], where
        assert set(operation["tags"]) <= tags, where
        operation_ids.append(operation["operationId"])
        responses = operation["responses"]
        assert any(status.startswith("2") for status in responses), where
        assert "500" in responses, where
        for status, response in responses.items():
            response = deref(document, response)
            assert response["description"], f"{where} {status}"
            if status[0] in "45":  # problem details; RFC 6749 errors at the token URL
                oauth = path == TOKEN_PATH and list(response["content"]) == ["application/json"]
                assert oauth or list(response["content"]) == [PROBLEM_CONTENT_TYPE], where
    assert len(operation_ids) == len(set(operation_ids))


def test_every_path_parameter_is_declared(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        templated = set(re.findall(r"{([^{}]+)}", path))
        shared = [deref(document, p) for p in item.get("parameters", [])]
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            parameters = shared + [deref(document, p) for p in operation.get("parameters", [])]
            declared = {p["name"] for p in parameters if p["in"] == "path"}
            assert declared == templated, f"{method.upper()} {path}"
            assert all(p["required"] for p in parameters if p["in"] == "path")
            names = [(p["name"].lower(), p["in"]) for p in parameters]
            assert len(names) == len(set(names)), f"{method.upper()} {path}: repeated parameter"


def test_security_requirements_name_declared_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    scopes = schemes["oauth2"]["flows"]["clientCredentials"]["scopes"]
    for path, method, operation in operations(document):
        for requirement in operation.get("security", []):
            for name, wanted in requirement.items():
                assert name in schemes, f"{method.upper()} {path}: {name}"
                assert set(wanted) <= set(scopes), f"{method.upper()} {path}: {wanted}"


def test_oauth2_scopes_are_the_scopes_clients_can_hold(document: dict[str, Any]) -> None:
    from exchange_node.services.clients import SCOPES

    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert sorted(flow["scopes"]) == sorted(SCOPES), REGENERATE
    assert flow["tokenUrl"] == "/oauth/token"


def test_component_schemas_are_json_schema_2020_12(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as e:  # jsonschema's SchemaError, named for the failure message
            pytest.fail(f"components/schemas/{name}: {e}")


# --- (c) every route of the app is documented, and nothing else -----------------------


def test_every_route_is_documented_with_its_methods(app: Flask, document: dict[str, Any]) -> None:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.rpartition(".")[0] in PAGE_BLUEPRINTS:
            continue  # the web app's pages are HTML for people, not the API
        path = FLASK_PARAMETER.sub(r"{\1}", rule.rule)
        methods = {method.lower() for method in rule.methods or ()} - {"head", "options"}
        routes.setdefault(path, set()).update(methods)
    documented = {
        path: {method for method in item if method in HTTP_METHODS}
        for path, item in document["paths"].items()
    }
    missing = {p: sorted(m - documented.get(p, set())) for p, m in routes.items()}
    phantom = {p: sorted(m - routes.get(p, set())) for p, m in documented.items()}
    missing, phantom = ({p: m for p, m in d.items() if m} for d in (missing, phantom))
    assert not missing, (
        f"routes without documentation {missing}: add them to ENDPOINTS in "
        f"exchange_node/openapi.py, then {REGENERATE}"
    )
    assert not phantom, f"documented operations the app lacks: {phantom}"


# --- (d) what the app answers matches the document ---------------------------------


def test_a_404_is_a_problem_as_documented(app: Flask, document: dict[str, Any]) -> None:
    response = app.test_client().get("/no/such/path")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_CONTENT_TYPE
    problem = response.get_json()
    validator(document, {"$ref": "#/components/schemas/Problem"}).validate(problem)
    assert set(problem) <= set(document["components"]["schemas"]["Problem"]["properties"])
    assert problem["code"] == "not_found"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/.well-known/openid-federation"])
def test_public_endpoints_answer_as_documented(
    app: Flask, document: dict[str, Any], path: str
) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 200
    check_documented(document, "get", path, response)


def test_entity_configuration_claims_match_their_component(
    app: Flask, document: dict[str, Any]
) -> None:
    token = app.test_client().get("/.well-known/openid-federation").get_data(as_text=True)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    token_schema = document["components"]["schemas"]["EntityConfiguration"]
    validator(document, token_schema["x-jws-claims"]).validate(claims)


def test_peer_endpoints_answer_as_documented(
    federation: nodes.Federation, clinic: nodes.TestNode, document: dict[str, Any]
) -> None:
    community, school = federation.add("community", "community-network"), federation.add("school")
    federation.peer(community, clinic)
    status_path, peering_path = "/federation/v1/peer-status", "/federation/v1/peering-requests"

    trusted = signed(community, clinic, "GET", status_path)
    assert trusted.status_code == 200
    check_documented(document, "get", status_path, trusted)

    headers = signature_headers(community, clinic, "GET", status_path)
    assert clinic.client().get(status_path, headers=headers).status_code == 200
    replayed = clinic.client().get(status_path, headers=headers)
    assert (replayed.status_code, replayed.get_json()["code"]) == (401, "replayed")
    check_documented(document, "get", status_path, replayed)

    unsigned = clinic.client().get(status_path)
    assert (unsigned.status_code, unsigned.get_json()["code"]) == (401, "signature_missing")
    check_documented(document, "get", status_path, unsigned)

    body = peering_request(school, clinic)
    accepted = signed(school, clinic, "POST", peering_path, body, PEERING_REQUEST_MEDIA_TYPE)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    check_documented(document, "post", peering_path, accepted)

    untrusted = signed(school, clinic, "GET", status_path)
    assert (untrusted.status_code, untrusted.get_json()["code"]) == (403, "peer_not_trusted")
    check_documented(document, "get", status_path, untrusted)

    wrong_type = signed(school, clinic, "POST", peering_path, body, "application/json")
    assert (wrong_type.status_code, wrong_type.get_json()["code"]) == (400, "malformed")
    check_documented(document, "post", peering_path, wrong_type)


def test_oauth_endpoints_answer_as_documented(
    clinic: nodes.TestNode, document: dict[str, Any]
) -> None:
    with clinic.node.database.session() as session:
        client, secret = clients.add_client(session, "Bed board", ["referrals:read"], NOW)
    http = clinic.client()
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    form = {"grant_type": "client_credentials"}

    issued = http.post(TOKEN_PATH, data=form, headers={"Authorization": f"Basic {basic}"})
    assert issued.status_code == 200
    check_documented(document, "post", TOKEN_PATH, issued)

    refused = http.post(
        TOKEN_PATH, data=form | {"client_id": client.client_id, "client_secret": "x"}
    )
    assert (refused.status_code, refused.get_json()["error"]) == (401, "invalid_client")
    check_documented(document, "post", TOKEN_PATH, refused)

    token = issued.get_json()["access_token"]
    known = http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert known.status_code == 200
    check_documented(document, "get", "/api/v1/whoami", known)

    unknown = http.get("/api/v1/whoami", headers={"Authorization": "Bearer nope"})
    assert (unknown.status_code, unknown.get_json()["code"]) == (401, "unauthorized")
    check_documented(document, "get", "/api/v1/whoami", unknown)


def test_service_endpoints_answer_as_documented(
    clinic: nodes.TestNode, document: dict[str, Any]
) -> None:
    http, services = clinic.client(), "/api/v1/services"
    with clinic.node.database.session() as session:
        client, secret = clients.add_client(session, "Bed board", ["capacity:write"], NOW)
    token = get_token(http, client.client_id, secret)
    auth = {"Authorization": f"Bearer {token}"}
    item = services + "/{service_id}"

    added = http.post(services, json=nodes.hsds_service("Food bank"), headers=auth)
    assert added.status_code == 201, added.get_data(as_text=True)
    check_documented(document, "post", services, added)
    path = services + "/" + added.get_json()["service"]["id"]
    capacity = {"status": "waitlist", "accepting_referrals": True, "wait_days": 3}
    answers = [
        ("get", services, http.get(services, headers=auth)),
        ("get", item, http.get(path, headers=auth)),
        ("put", item, http.put(path, json={"name": "Pantry", "status": "active"}, headers=auth)),
        ("put", item + "/capacity", http.put(path + "/capacity", json=capacity, headers=auth)),
        ("post", services + "/import", http.post(services + "/import", json=[], headers=auth)),
        ("post", services, http.post(services + "?public=yes", json={}, headers=auth)),
        ("get", services, http.get(services)),
        ("delete", item, http.delete(path, headers=auth)),
        ("get", item, http.get(path, headers=auth)),
    ]
    statuses = [response.status_code for _, _, response in answers]
    assert statuses == [200, 200, 200, 200, 200, 400, 401, 204, 404]
    for method, documented, response in answers:
        check_documented(document, method, documented, response)


def test_capacity_feed_answers_as_documented(
    federation: nodes.Federation, clinic: nodes.TestNode, document: dict[str, Any]
) -> None:
    community = federation.add("community", "community-network")
    federation.peer(community, clinic)
    path = "/federation/v1/capacity"
    fresh = signed(community, clinic, "GET", path)
    assert fresh.status_code == 200
    check_documented(document, "get", path, fresh)
    headers = signature_headers(community, clinic, "GET", path)
    current = clinic.client().get(path, headers=headers | {"If-None-Match": fresh.headers["ETag"]})
    assert current.status_code == 304
    check_documented(document, "get", path, current)


@pytest.mark.parametrize("public_hsds", [True, False])
def test_hsds_endpoints_answer_as_documented(
    clinic: nodes.TestNode, document: dict[str, Any], public_hsds: bool
) -> None:
    clinic.node.settings = dataclasses.replace(clinic.node.settings, public_hsds=public_hsds)
    record = nodes.hsds_service("Food bank")
    with clinic.node.database.session() as session:
        catalog.add_service(clinic.node, session, record, public=True)
    item = "/hsds/services/{service_id}"
    for path, documented in [
        ("/hsds/", "/hsds/"),
        ("/hsds/services?full=true", "/hsds/services"),
        ("/hsds/services?page=0", "/hsds/services"),
        ("/hsds/services/" + record["id"], item),
        ("/hsds/services/" + str(uuid.uuid4()), item),
    ]:
        response = clinic.client().get(path)
        if not public_hsds:
            assert response.status_code == 404
        check_documented(document, "get", documented, response)


def test_directory_answers_as_documented(clinic: nodes.TestNode, document: dict[str, Any]) -> None:
    http, path = clinic.client(), "/api/v1/directory"
    with clinic.node.database.session() as session:
        client, secret = clients.add_client(session, "Finder", ["directory:read"], NOW)
    auth = {"Authorization": f"Bearer {get_token(http, client.client_id, secret)}"}
    found = http.get(path + "?q=food&status=waitlist&status=capacity", headers=auth)
    assert found.status_code == 200, found.get_data(as_text=True)
    check_documented(document, "get", path, found)
    refused = http.get(path + "?limit=1000", headers=auth)
    assert (refused.status_code, refused.get_json()["code"]) == (400, "invalid_request")
    check_documented(document, "get", path, refused)


# --- the command -----------------------------------------------------------------------


def test_command_writes_checks_and_prints_the_document(tmp_path: Path) -> None:
    output = tmp_path / "openapi.json"
    runner = CliRunner()
    written = runner.invoke(openapi, ["--output", str(output)])
    assert written.exit_code == 0, written.output
    assert output.read_text(encoding="utf-8") == render_openapi(build_openapi())
    assert runner.invoke(openapi, ["--check", "--output", str(output)]).exit_code == 0
    printed = runner.invoke(openapi, [])
    assert json.loads(printed.output) == build_openapi()


def test_check_of_a_stale_file_fails_with_one_line(tmp_path: Path) -> None:
    output = tmp_path / "openapi.json"
    output.write_text("{}\n", encoding="utf-8")
    result = CliRunner().invoke(openapi, ["--check", "--output", str(output)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "is out of date" in result.output
    assert f"exchange-node openapi --output {output}" in result.output
    assert output.read_text(encoding="utf-8") == "{}\n"


# --- helpers -------------------------------------------------------------------------------


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local reference (RFC 6901 JSON Pointer after ``#``)."""
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict), ref
        assert key in target, f"{ref} does not resolve"
        target = target[key]
    return target


def deref(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = resolve(document, node["$ref"])
    return node


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    return Draft202012Validator({**schema, "components": document["components"]})


def check_documented(
    document: dict[str, Any], method: str, path: str, response: TestResponse
) -> None:
    """The response's status and media type are documented, and its body fits their schema."""
    responses = document["paths"][path][method]["responses"]
    where = f"{method.upper()} {path} {response.status_code}"
    assert str(response.status_code) in responses, f"{where} is not documented"
    documented = deref(document, responses[str(response.status_code)])
    for name in documented.get("headers", {}):
        assert name in response.headers, f"{where}: no {name} header"
    if "content" not in documented:
        assert not response.get_data(), f"{where}: a body where none is documented"
        return
    content = documented["content"]
    assert response.mimetype in content, f"{where}: {response.mimetype} is not documented"
    schema = content[response.mimetype]["schema"]
    if response.is_json:
        body: Any = response.get_json()
    else:
        body = response.get_data(as_text=True)
    validator(document, schema).validate(body)


def signature_headers(
    sender: nodes.TestNode,
    receiver: nodes.TestNode,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = None,
) -> dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    with sender.node.database.session() as session:
        key = sender.node.ring(session).signing_key
    url = receiver.url + path
    return headers | sign_request(method, url, headers, body, key=key, now=sender.node.now())


def signed(
    sender: nodes.TestNode,
    receiver: nodes.TestNode,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = None,
) -> TestResponse:
    """A request from ``sender`` to ``receiver``, signed with the exchange profile."""
    headers = signature_headers(sender, receiver, method, path, body, content_type)
    return receiver.client().open(path, method=method, headers=headers, data=body)


def peering_request(sender: nodes.TestNode, receiver: nodes.TestNode) -> bytes:
    with sender.node.database.session() as session:
        key = sender.node.ring(session).signing_key
    token = sign_peering_request(
        issuer=sender.url, audience=receiver.url, signing_key=key, now=sender.node.now()
    )
    return token.encode("ascii")
