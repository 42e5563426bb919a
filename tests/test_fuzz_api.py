"""The open data API run against its own OpenAPI document with schemathesis, in process
(WSGI), on both databases: for every operation, requests generated from the document
(valid ones, and invalid ones: wrong types, values outside the enums, missing required
parameters) never get a server error, invalid ones get a 4xx, and every answer has a
status, content type and body the document describes. The regulator endpoints get a
regulator's bearer token.

Derandomized and few examples per operation: the same requests on every run."""
from __future__ import annotations

import contextvars

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from feereg.api_spec import resolve

from .api_world import bearer, build_world

EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, status_code_conformance, content_type_conformance,
                              response_schema_conformance],
    GenerationMode.NEGATIVE: [not_a_server_error, status_code_conformance, content_type_conformance,
                              response_schema_conformance, negative_data_rejection],
}


@pytest.fixture
def world(session):
    return build_world(session)


@pytest.fixture
def api_schema(app, world):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _operations(schema):
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())  # a document schemathesis cannot read fails here
    return operations


def test_every_documented_operation_is_fuzzed(api_schema):
    """The loop below covers the document: a new endpoint is fuzzed without editing this file."""
    paths = {op.path for op in _operations(api_schema)}
    assert "/api/v1/regulator/flags" in paths and "/api/v1/search" in paths
    # schemathesis leaves out the document's own address: it has just read it.
    assert paths | {"/api/v1/openapi.json"} == set(api_schema.raw_schema["paths"])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_the_api_conforms_to_its_document_and_never_fails(api_schema, world, mode):
    token_headers = bearer(world["token"])
    document = api_schema.raw_schema
    for operation in _operations(api_schema):
        declared = document["paths"][operation.path][operation.method]
        if mode is GenerationMode.NEGATIVE and not declared.get("parameters"):
            continue  # nothing to send wrong (an unknown parameter is a 400: tests/test_api.py)
        regulator = operation.path.startswith("/api/v1/regulator/")
        strategy = operation.as_strategy(generation_mode=mode, headers=token_headers if regulator else None)

        @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):
            # Each request in an empty context, as in production: nothing in flask.g carries over.
            contextvars.Context().run(case.call_and_validate, checks=CHECKS[mode])

        try:
            run()
        except Unsatisfiable:
            # Only a string in the path: every value is one (/firms/{code}); nothing to send wrong.
            parameters = [resolve(document, p) for p in declared.get("parameters", [])]
            assert mode is GenerationMode.NEGATIVE and all(
                p["in"] == "path" and p["schema"].get("type") == "string" for p in parameters), operation.path
        except Exception as failure:
            raise AssertionError(f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}") from failure


# --- what the fuzzing found, kept as plain tests ----------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/fee-items/2147483648", "/api/v1/fee-items/584203132277434/versions",
                                  "/api/v1/regulator/flags/99999999999", "/api/v1/fee-items/0",
                                  "/api/v1/firms/%00", "/api/v1/fee-types/THC%0A"])
def test_a_row_number_beyond_the_database_or_a_control_character_in_the_path_is_404(client, world, path):
    """PostgreSQL raised on an id past its INTEGER range, and on a NUL in a compared text."""
    response = client.get(path, headers=bearer(world["token"]))
    assert response.status_code == 404 and response.is_json
    assert response.get_json()["status"] == 404


@pytest.mark.parametrize("query,parameter,reason", [
    ("firms?page=", "page", "is empty"), ("fee-items?as_of=", "as_of", "is empty"),
    ("firms?category=%20", "category", "is empty"),
    ("search?q=THC&fee_type=%00", "fee_type", "control characters"), ("firms?q=a%00b", "q", "control characters"),
    ("fee-items?firm=9144%1F", "firm", "control characters"),
])
def test_an_empty_or_control_character_argument_is_a_400_naming_it(client, world, query, parameter, reason):
    """An empty value was read as "not given", so page= listed page 1 and a lost filter listed
    everything; a NUL reached PostgreSQL, which refuses it with an error."""
    response = client.get(f"/api/v1/{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == parameter and reason in body["detail"]
