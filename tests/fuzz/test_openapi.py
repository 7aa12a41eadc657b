"""Every operation of ``/openapi.json``, fuzzed in-process: never a 5xx, always as documented.

Schemathesis generates requests for each operation (the spec's examples, boundary and
negative cases of every parameter, then random ones) and sends them to the app through
WSGI, as a moderator of every site, with the path's ``site`` an existing site and
``comment_id`` mostly one of the seeded comments, so that requests get past
authentication and lookups into the real code. Each answer must be documented for its
operation: status code, content type, body schema and headers.

Generation is deterministic (derandomized), so a run repeats the previous one.
"""

from __future__ import annotations

import copy

import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from commentsvc.api.openapi import spec
from tests.fuzz.conftest import PAGE, SEEDED_IDS, Seeded

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"deterministic": True, "max-examples": 50},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
        },
        "dictionaries": {
            "comment_ids": {"values": list(SEEDED_IDS)},
            "pages": {"values": [PAGE]},
        },
        "parameters": {
            # Unknown sites answer 404 before anything else happens: not worth fuzzing.
            "path.site": "news",
            "path.comment_id": {"dictionary": "comment_ids", "probability": 0.7},
            "query.comment_id": {"dictionary": "comment_ids", "probability": 0.5},
            "query.page": {"dictionary": "pages", "probability": 0.5},
            "body.page": {"dictionary": "pages", "probability": 0.5},
            "body.parent_id": {"dictionary": "comment_ids", "probability": 0.5},
            "body.ids[*]": {"dictionary": "comment_ids", "probability": 0.7},
        },
    }
)

# A copy of the document the app serves, loaded without an app: the schema must exist when
# the tests are collected, before any fixture. The first test proves the two are the same.
schema = schemathesis.openapi.from_dict(copy.deepcopy(spec()), config=CONFIG)


def test_the_fuzzed_document_is_the_served_one(client: FlaskClient) -> None:
    assert client.get("/openapi.json").get_json() == schema.raw_schema


# One database per operation, shared by its examples on purpose: deletions, moderation and
# new comments of earlier examples are what later ones find.
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_operation(case: schemathesis.Case, app: Flask, seeded: Seeded) -> None:
    case.call_and_validate(app=app, headers=seeded.auth)
