"""The OpenAPI 3.1 document of the open data API, as data.

`/api/v1/openapi.json` serves it (in English) and the `/api` page renders it for people
(in the reader's language: summaries and descriptions are lazy gettext strings). A test
holds it to the routes: every route under /api/v1 is described here, with the query
parameters its view accepts, and nothing else is.
"""
from __future__ import annotations

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from . import codes
from .models import COMPLAINT_STATUSES, FLAG_STATUSES
from .search import FACETS
from .search import SORTS as SEARCH_SORTS
from .services.anomaly_rules import RULES
from .services.compare import SORTS as COMPARE_SORTS
from .web import MAX_ROW_ID

SAMPLE_FIRM = "91440300MA5G00001X"

# --- schema shorthands ----------------------------------------------------------------------

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
#: A row's number in a path: what the database's INTEGER column holds (feereg/web.py, RowIdConverter).
ROW_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}
BOOLEAN = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "A decimal amount with two places."}
NULLABLE_MONEY = {"type": ["string", "null"], "pattern": r"^-?\d+\.\d{2}$"}
URL = {"type": "string", "format": "uri-reference"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(name: str) -> dict:
    return {"oneOf": [ref(name), {"type": "null"}]}


def enum(values, nullable_: bool = False) -> dict:
    values = list(values)
    return {"type": ["string", "null"], "enum": values + [None]} if nullable_ else {"type": "string", "enum": values}


def obj(properties: dict, required=None) -> dict:
    """An object; every property is required unless `required` names fewer."""
    return {"type": "object", "required": list(required if required is not None else properties),
            "properties": properties}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def links(*names: str) -> dict:
    return obj({name: URL for name in names})


def page_of(item: str, **extra) -> dict:
    """A page of a listing: the items and where the other pages are."""
    return obj({**extra, "items": array(ref(item)), "total": INTEGER, "page": INTEGER, "per_page": INTEGER,
                "pages": INTEGER, "links": ref("PageLinks")})


SCOPE = {"container_size": enum(codes.CONTAINER_SIZES), "cargo_scope": enum(codes.CARGO_SCOPES),
         "trade": enum(codes.TRADES), "direction": enum(codes.DIRECTIONS)}
# A stored scope of "" means "any": the enums above list the codes, and "" besides.
for _schema in SCOPE.values():
    _schema["enum"] = [""] + _schema["enum"]

FIRM_REF = {"credit_code": STRING, "name_zh": STRING, "name_en": STRING, "category": enum(codes.CATEGORIES),
            "status": enum(codes.FIRM_STATUSES)}

VERSION = {
    "id": INTEGER, "item_id": INTEGER, "credit_code": STRING,
    "seq": {"type": "integer", "description": "Position in the firm's hash chain, from 1."},
    "kind": enum(("publish", "withdraw")), "fee_type": STRING, "fee_code": STRING, "name_zh": STRING,
    "name_en": STRING, "unit": enum(codes.UNITS), **SCOPE, "amount": MONEY, "currency": enum(codes.CURRENCIES),
    "tax_included": BOOLEAN, "tax_rate": NULLABLE_MONEY,
    "tiers": {"type": "string", "description": "Daily bands of a time-based fee, e.g. free:7;8-14:85;22-:340."},
    "pricing_basis": enum(codes.PRICING_BASES), "service_content": STRING, "legal_basis": STRING,
    "ports": array(enum(codes.PORTS)), "effective_from": DATE,
    "published_at": {"type": "string", "description": "UTC, with microseconds, exactly as hashed."},
    "reason": STRING, "prev_hash": STRING,
    "hash": {"type": "string", "description": "SHA-256 of the canonical record (feereg/services/history.py)."},
}

SCHEMAS = {
    "Problem": obj({"type": STRING, "title": STRING, "status": INTEGER, "detail": STRING,
                    "parameter": {"type": "string", "description": "The query parameter at fault (400)."}},
                   required=("type", "title", "status", "detail")),
    "PageLinks": obj({"self": URL, "first": URL, "last": URL, "next": {"type": ["string", "null"]},
                      "prev": {"type": ["string", "null"]}}),
    "Index": obj({"name": STRING, "version": STRING, "openapi": URL, "documentation": URL,
                  "endpoints": {"type": "object", "additionalProperties": STRING}}),
    "OpenApiDocument": {**obj({"openapi": STRING, "info": {"type": "object"}, "paths": {"type": "object"},
                               "components": {"type": "object"}}), "additionalProperties": True},
    "FirmRef": obj(FIRM_REF),
    "Firm": obj({**FIRM_REF, "status_reason": STRING, "ports": array(enum(codes.PORTS)), "chain_length": INTEGER,
                 "chain_head": NULLABLE_STRING, "item_count": INTEGER,
                 "links": links("self", "fee_items", "versions", "html")}),
    "FirmPage": page_of("Firm"),
    "Version": obj(VERSION),
    "VersionPage": page_of("Version", as_of=NULLABLE_DATE),
    "FirmVersionPage": page_of("Version", firm=ref("FirmRef"), as_of=NULLABLE_DATE, chain_length=INTEGER,
                               chain_head=NULLABLE_STRING),
    "ItemVersionPage": page_of("Version", item_id=INTEGER, as_of=NULLABLE_DATE),
    "FeeItem": obj({**VERSION, "firm": ref("FirmRef"), "links": links("self", "versions", "html")}),
    "FeeItemPage": page_of("FeeItem", as_of=DATE),
    "FeeItemDetail": obj({"id": INTEGER, "status": enum(("published", "withdrawn")), "firm": ref("FirmRef"),
                          "as_of": DATE, "in_force": nullable("Version"), "versions": array(ref("Version")),
                          "links": links("self", "versions", "firm", "html")}),
    "Facet": array(obj({"value": STRING, "count": INTEGER})),
    "SearchPage": page_of("FeeItem", query=STRING, filters={"type": "object", "additionalProperties": STRING},
                          sort=enum(SEARCH_SORTS), notices=array(STRING),
                          facets=obj({facet: ref("Facet") for facet in FACETS})),
    "Stats": obj({"count": INTEGER, "min": MONEY, "q1": MONEY, "median": MONEY, "q3": MONEY, "p90": MONEY,
                  "max": MONEY}),
    "CompareRow": obj({"item_id": INTEGER, "version_id": INTEGER, "firm": ref("FirmRef"), "fee_code": STRING,
                       "name_zh": STRING, "name_en": STRING, "unit": enum(codes.UNITS), **SCOPE, "amount": MONEY,
                       "currency": enum(codes.CURRENCIES), "tax_included": BOOLEAN, "tiers": STRING,
                       "effective_from": DATE,
                       "amount_cny": {"type": ["string", "null"],
                                      "description": "In CNY at the configured rate; null when there is none."}}),
    "Comparison": page_of("CompareRow", fee_type=obj({"code": STRING, "name_zh": STRING, "name_en": STRING}),
                          as_of=DATE, sort=enum(COMPARE_SORTS), order=enum(("asc", "desc")), stats=nullable("Stats"),
                          firm_count=INTEGER, mixed=BOOLEAN,
                          mix=array(obj({"unit": STRING, "container_size": STRING, "count": INTEGER})),
                          rates=obj({"effective_from": NULLABLE_DATE,
                                     "cny_per_unit": {"type": "object", "additionalProperties": STRING}})),
    "FeeType": obj({"code": STRING, "name_zh": STRING, "name_en": STRING, "aliases": array(STRING), "group": STRING,
                    "unit": STRING, "pricing_basis": enum(codes.PRICING_BASES), "pass_through": BOOLEAN,
                    "charged_by": array(STRING), "abolished_from": NULLABLE_DATE, "replaced_by": NULLABLE_STRING,
                    "policy_note": STRING, "links": links("self", "compare")}),
    "FeeTypePage": page_of("FeeType"),
    "Flag": obj({"id": INTEGER, "rule": enum(RULES), "severity": enum(("high", "medium", "low")),
                 "status": enum(FLAG_STATUSES), "firm": ref("FirmRef"), "item_id": {"type": ["integer", "null"]},
                 "version_id": {"type": ["integer", "null"]}, "complaint_id": {"type": ["integer", "null"]},
                 "fee_type": NULLABLE_STRING, "explanation": STRING,
                 "evidence": {"type": "object", "description": "The numbers behind the flag."},
                 "note": STRING, "reviewer": NULLABLE_STRING, "decided_at": NULLABLE_TIME,
                 "resolved_at": NULLABLE_TIME, "firm_answer": STRING, "firm_answered_at": NULLABLE_TIME,
                 "created_at": {"type": "string", "format": "date-time"}, "updated_at": NULLABLE_TIME,
                 "links": links("self", "html")}),
    "FlagPage": page_of("Flag"),
    "Complaint": obj({"id": INTEGER, "status": enum(COMPLAINT_STATUSES), "firm": ref("FirmRef"),
                      "item_id": {"type": ["integer", "null"]}, "fee_name": STRING, "fee_type": NULLABLE_STRING,
                      "amount": MONEY, "currency": STRING, "charged_on": DATE, "description": STRING,
                      "contact": STRING, "firm_answer": STRING, "regulator_conclusion": STRING,
                      "received_at": {"type": "string", "format": "date-time"}, "forwarded_at": NULLABLE_TIME,
                      "answered_at": NULLABLE_TIME, "closed_at": NULLABLE_TIME, "links": links("self", "html")}),
    "ComplaintPage": page_of("Complaint"),
}

# --- parameters ---------------------------------------------------------------------------


def param(name: str, description, schema: dict, where: str = "query", example=None, required: bool = False) -> dict:
    out = {"name": name, "in": where, "required": required or where == "path", "description": description,
           "schema": schema}
    if example is not None:
        out["example"] = example
    return out


def _scope_param(name: str, table: dict, description) -> dict:
    return param(name, description, enum(list(table) + ["any"]))


PARAMETERS = {
    "page": param("page", _l("Page number, from 1."), {"type": "integer", "minimum": 1, "default": 1}),
    "per_page": param("per_page", _l("Results per page, at most 200."),
                      {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
    "as_of": param("as_of", _l("A date (YYYY-MM-DD): the registry as it stood on that day."), DATE,
                   example="2025-06-30"),
    "versions_as_of": param("as_of", _l("A date (YYYY-MM-DD): only the versions effective on or before it."),
                            DATE, example="2025-06-30"),
    "firm": param("firm", _l("A firm's unified social credit code."), STRING, example=SAMPLE_FIRM),
    "fee_type": param("fee_type", _l("A fee type code of the catalog, e.g. THC."), STRING, example="THC"),
    "category": param("category", _l("Firm category."), enum(codes.CATEGORIES)),
    "port": param("port", _l("Port code: the fees that apply there."), enum(codes.PORTS), example="YANTIAN"),
    "currency": param("currency", _l("Currency of the amount."), enum(codes.CURRENCIES)),
    "unit": param("unit", _l("Unit the fee is charged per."), enum(codes.UNITS)),
    "pricing_basis": param("pricing_basis", _l("Pricing basis: government-set, government-guided or market."),
                           enum(codes.PRICING_BASES)),
    "container_size": _scope_param("container_size", codes.CONTAINER_SIZES,
                                   _l("Container size; any: the items for any size.")),
    "cargo_scope": _scope_param("cargo_scope", codes.CARGO_SCOPES,
                                _l("Cargo scope; any: the items for general cargo.")),
    "trade": _scope_param("trade", codes.TRADES, _l("Foreign or domestic trade; any: the items for either.")),
    "direction": _scope_param("direction", codes.DIRECTIONS, _l("Import or export; any: the items for either.")),
    "code": param("code", _l("The firm's unified social credit code."), STRING, "path", SAMPLE_FIRM),
    "item_id": param("item_id", _l("The fee item's number."), ROW_ID, "path", 1),
    "fee_type_code": param("code", _l("The fee type's code."), STRING, "path", "THC"),
    "flag_id": param("flag_id", _l("The flag's number."), ROW_ID, "path", 1),
    "complaint_id": param("complaint_id", _l("The complaint's number."), ROW_ID, "path", 1),
}


def use(*names: str) -> list[dict]:
    return [{"$ref": f"#/components/parameters/{name}"} for name in names]


# --- responses ----------------------------------------------------------------------------

def _ok(schema: str, description) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def _problem(description) -> dict:
    return {"description": description, "content": {"application/problem+json": {"schema": ref("Problem")}}}


RESPONSES = {
    "NotModified": {"description": _l("Not modified: the copy you have (its ETag or date) is current.")},
    "BadRequest": _problem(_l("A parameter is wrong: the answer names it and says why.")),
    "Unauthorized": _problem(_l("No token, or a token that is unknown, revoked or of a disabled account.")),
    "Forbidden": _problem(_l("The token's owner is not a regulator.")),
    "NotFound": _problem(_l("No such firm, item, fee type, flag or complaint.")),
    "TooManyRequests": _problem(_l("Too many requests from you; wait a moment.")),
}


def _responses(schema: str, description, *errors: str) -> dict:
    out = {"200": _ok(schema, description), "304": {"$ref": "#/components/responses/NotModified"},
           "400": {"$ref": "#/components/responses/BadRequest"}}
    for code, name in (("401", "Unauthorized"), ("403", "Forbidden"), ("404", "NotFound")):
        if name in errors:
            out[code] = {"$ref": f"#/components/responses/{name}"}
    out["429"] = {"$ref": "#/components/responses/TooManyRequests"}
    return out


def op(tag: str, summary, description, schema: str, *, params=(), errors=(), example: str, regulator=False,
       response=None) -> dict:
    operation = {"tags": [tag], "summary": summary, "description": description, "parameters": list(params),
                 "responses": _responses(schema, response or summary, *errors),
                 # The page's curl example: a path (and query) on this server.
                 "x-example": example}
    if regulator:
        operation["security"] = [{"bearerAuth": []}]
        operation["responses"] = _responses(schema, response or summary, "Unauthorized", "Forbidden", *errors)
    return operation


ABOUT, FIRMS, FEES, TOOLS, CATALOG, REGULATORS = "about", "firms", "fees", "tools", "catalog", "regulators"

TAGS = [
    {"name": ABOUT, "x-title": _l("About the API"), "description": _l("Where to start.")},
    {"name": FIRMS, "x-title": _l("Firms"), "description": _l("The firms that publish fees, and their hash chains.")},
    {"name": FEES, "x-title": _l("Fees and their versions"),
     "description": _l("Fees in force on a date, one item with its history, the versions of an item.")},
    {"name": TOOLS, "x-title": _l("Search and compare"),
     "description": _l("The search and comparison of the site, as data.")},
    {"name": CATALOG, "x-title": _l("Fee catalog"), "description": _l("The standard fee types.")},
    {"name": REGULATORS, "x-title": _l("For regulators"),
     "description": _l("Flags and complaints: a regulator's API token is needed. Never cached.")},
]

PATHS = {
    "/api/v1/": {"get": op(
        ABOUT, _l("The API's entry point"), _l("Its name, version, and every endpoint with what it does."),
        "Index", example="/api/v1/")},
    "/api/v1/openapi.json": {"get": op(
        ABOUT, _l("This document"), _l("The OpenAPI 3.1 description of every endpoint."), "OpenApiDocument",
        example="/api/v1/openapi.json")},
    "/api/v1/firms": {"get": op(
        FIRMS, _l("List firms"), _l("The firm directory, by Chinese name; narrow it by category, port, status "
                                   "or a piece of the name or credit code."),
        "FirmPage",
        params=use("category", "port") + [
            param("status", _l("Active or suspended."), enum(codes.FIRM_STATUSES)),
            param("q", _l("Part of the firm's name (Chinese or English) or credit code."), STRING, example="盐田"),
        ] + use("page", "per_page"),
        example="/api/v1/firms?category=offport_yard&port=YANTIAN")},
    "/api/v1/firms/{code}": {"get": op(
        FIRMS, _l("One firm"), _l("A firm, its ports, status, number of items and the head of its hash chain."),
        "Firm", params=use("code"), errors=("NotFound",), example=f"/api/v1/firms/{SAMPLE_FIRM}")},
    "/api/v1/firms/{code}/versions": {"get": op(
        FIRMS, _l("A firm's versions"),
        _l("Every change the firm published, newest first: its whole hash chain, to verify offline."),
        "FirmVersionPage", params=use("code", "versions_as_of", "page", "per_page"), errors=("NotFound",),
        example=f"/api/v1/firms/{SAMPLE_FIRM}/versions?as_of=2025-06-30")},
    "/api/v1/fee-items": {"get": op(
        FEES, _l("Fee items in force"),
        _l("The fees in force today, or on the as_of date, by firm and fee type; narrow them with any filter."),
        "FeeItemPage",
        params=use("firm", "fee_type", "port", "category", "currency", "unit", "pricing_basis", "container_size",
                   "cargo_scope", "trade", "direction", "as_of", "page", "per_page"),
        example="/api/v1/fee-items?fee_type=THC&port=YANTIAN&container_size=40")},
    "/api/v1/fee-items/{item_id}": {"get": op(
        FEES, _l("One fee item"),
        _l("A fee item: the version in force today or on the as_of date, and all its versions, newest first."),
        "FeeItemDetail", params=use("item_id", "as_of"), errors=("NotFound",),
        example="/api/v1/fee-items/1?as_of=2025-06-30")},
    "/api/v1/fee-items/{item_id}/versions": {"get": op(
        FEES, _l("An item's versions"), _l("The item's published changes, newest first."), "ItemVersionPage",
        params=use("item_id", "versions_as_of", "page", "per_page"), errors=("NotFound",),
        example="/api/v1/fee-items/1/versions")},
    "/api/v1/search": {"get": op(
        TOOLS, _l("Search fees"),
        _l("Full-text search in Chinese, English, codes and pinyin, as on the search page, with its facets."),
        "SearchPage",
        params=[param("q", _l("What to look for: a fee, a firm, a port, e.g. THC or 堆场."), STRING, example="堆场",
                      required=True)]
        + use("fee_type", "category", "port", "currency", "pricing_basis")
        + [param("sort", _l("relevance, amount (lowest first) or amount_desc."), enum(SEARCH_SORTS))]
        + use("page", "per_page"),
        response=_l("The fees found, with facet counts."), example="/api/v1/search?q=THC&port=YANTIAN")},
    "/api/v1/compare/{code}": {"get": op(
        TOOLS, _l("Compare one fee type across firms"),
        _l("Every firm's amount in force for a fee type, converted to CNY and ranked, with statistics "
           "(minimum, quartiles, median, 90th percentile, maximum)."),
        "Comparison",
        params=use("fee_type_code", "unit") + [
            param("container_size", _l("Container size; items for any size are included unless the firm "
                                       "has one for this size."), enum(codes.CONTAINER_SIZES)),
            _scope_param("cargo_scope", codes.CARGO_SCOPES, _l("Cargo scope; any: general cargo only. "
                                                               "Leave out for all items.")),
        ] + use("port", "category", "as_of") + [
            param("sort", _l("amount or firm."), enum(COMPARE_SORTS)),
            param("order", _l("asc or desc."), enum(("asc", "desc"))),
        ] + use("page", "per_page"),
        errors=("NotFound",), example="/api/v1/compare/THC?container_size=40&port=YANTIAN")},
    "/api/v1/fee-types": {"get": op(
        CATALOG, _l("The fee catalog"), _l("The standard fee types with their other names and policy."),
        "FeeTypePage",
        params=[param("group", _l("A group of the catalog, e.g. shipping, yard, government."), STRING,
                      example="yard")] + use("page", "per_page"),
        example="/api/v1/fee-types?group=yard")},
    "/api/v1/fee-types/{code}": {"get": op(
        CATALOG, _l("One fee type"), _l("A fee type of the catalog."), "FeeType", params=use("fee_type_code"),
        errors=("NotFound",), example="/api/v1/fee-types/THC")},
    "/api/v1/regulator/flags": {"get": op(
        REGULATORS, _l("Flags"), _l("Anomaly flags, most severe and newest first; every status unless narrowed."),
        "FlagPage", regulator=True,
        params=[param("status", _l("Flag status."), enum(FLAG_STATUSES)),
                param("rule", _l("The rule that raised it."), enum(RULES)),
                param("severity", _l("high, medium or low."), enum(("high", "medium", "low")))]
        + use("firm")
        + [param("from", _l("Raised on or after this date."), DATE),
           param("to", _l("Raised on or before this date."), DATE)]
        + use("page", "per_page"),
        example="/api/v1/regulator/flags?status=open&rule=PEER_OUTLIER")},
    "/api/v1/regulator/flags/{flag_id}": {"get": op(
        REGULATORS, _l("One flag"), _l("A flag with its evidence, review and the firm's answer."), "Flag",
        regulator=True, params=use("flag_id"), errors=("NotFound",), example="/api/v1/regulator/flags/1")},
    "/api/v1/regulator/complaints": {"get": op(
        REGULATORS, _l("Complaints"), _l("Complaints, newest first; open means not closed."), "ComplaintPage",
        regulator=True,
        params=[param("status", _l("open, or a complaint status."), enum(("open",) + COMPLAINT_STATUSES))]
        + use("firm", "page", "per_page"),
        example="/api/v1/regulator/complaints?status=open")},
    "/api/v1/regulator/complaints/{complaint_id}": {"get": op(
        REGULATORS, _l("One complaint"), _l("A complaint with each step's time, the firm's answer and the "
                                            "conclusion."), "Complaint",
        regulator=True, params=use("complaint_id"), errors=("NotFound",), example="/api/v1/regulator/complaints/1")},
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "feereg open data API",
        "version": "1",
        "summary": _l("The port fee registry's published fees, history, search and comparison, as JSON."),
        "description": _l(
            "Read-only. Lists are paginated (page, per_page up to 200; the links say where the other pages are). "
            "Every answer has an ETag, and a Last-Modified where the data has a change time: send them back in "
            "If-None-Match or If-Modified-Since and an unchanged answer is a 304 without a body. Errors are "
            "problem details (application/problem+json) that name the parameter at fault. Amounts are decimal "
            "strings; dates are YYYY-MM-DD. The regulator endpoints need a regulator's bearer token."),
        "license": {"name": "Open data", "identifier": "CC-BY-4.0"},
    },
    "servers": [{"url": "/"}],
    "tags": TAGS,
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "parameters": PARAMETERS,
        "responses": RESPONSES,
        "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": _l("A regulator creates a token on the regulator's API tokens page, or an operator "
                              "with: feereg token create --email … --name …")}},
    },
}


def _resolved(value):
    if isinstance(value, LazyString):
        return str(value)
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


def openapi_document(lang: str | None = "en") -> dict:
    """The document with every text in `lang` (None: the current request's language)."""
    if lang is None:
        return _resolved(DOCUMENT)
    with force_locale(lang):
        return _resolved(DOCUMENT)


def operations(document: dict):
    """(path, method, operation) for each operation, in the document's order."""
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def resolve(document: dict, node: dict) -> dict:
    """Follow a local $ref ("#/components/...") as often as it leads to another."""
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node
