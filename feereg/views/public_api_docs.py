"""The page that documents the open data API, rendered on the server from its OpenAPI
document (feereg/api_spec.py) in the reader's language. On the public blueprint."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import render_template, request

from ..api_spec import openapi_document, operations, resolve
from .public import bp


@dataclass
class Parameter:
    name: str
    where: str
    required: bool
    values: str
    description: str


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    regulator: bool
    curl: str
    parameters: list[Parameter] = field(default_factory=list)
    responses: list[tuple[str, str]] = field(default_factory=list)


def _values(schema: dict) -> str:
    """What a parameter takes, in a few words: its codes, its range, or its form."""
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"] if v is not None)
    if schema.get("format") == "date":
        return "YYYY-MM-DD"
    if schema.get("type") == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{low}–{high}"
        if low is not None:
            return f"≥ {low}"
        return "integer"
    return str(schema.get("type", ""))


def _curl(example: str, regulator: bool) -> str:
    base = request.host_url.rstrip("/")
    auth = ' -H "Authorization: Bearer $FEEREG_TOKEN"' if regulator else ""
    return f"curl -i{auth} '{base}{example}'"


def _operations(document: dict) -> dict[str, list[Operation]]:
    by_tag: dict[str, list[Operation]] = {tag["name"]: [] for tag in document["tags"]}
    for path, method, op in operations(document):
        regulator = bool(op.get("security"))
        entry = Operation(method.upper(), path, op["summary"], op["description"], regulator,
                          _curl(op["x-example"], regulator))
        for raw in op["parameters"]:
            p = resolve(document, raw)
            entry.parameters.append(Parameter(p["name"], p["in"], p["required"], _values(p["schema"]),
                                              p["description"]))
        for code, raw in op["responses"].items():
            entry.responses.append((code, resolve(document, raw)["description"]))
        by_tag[op["tags"][0]].append(entry)
    return by_tag


@bp.get("/api")
def api_docs():
    document = openapi_document(lang=None)  # the reader's language
    return render_template("public/api_docs.html", document=document, tags=document["tags"],
                           by_tag=_operations(document), base=request.host_url.rstrip("/"))
