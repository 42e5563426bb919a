"""A small JSON Schema checker for the API's responses: the parts of JSON Schema the
OpenAPI document uses (type, enum, required, properties, items, oneOf, pattern, date
format, $ref). Strict about objects: a property the schema does not name is a problem, so
the document cannot fall behind what the API sends."""
from __future__ import annotations

import re
from datetime import date

from feereg.api_spec import resolve

_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list,
          "null": type(None)}


def _is(value, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def problems(document: dict, schema: dict, value, where: str = "$") -> list[str]:
    schema = resolve(document, schema)
    if "oneOf" in schema:
        branches = [problems(document, branch, value, where) for branch in schema["oneOf"]]
        if sum(1 for found in branches if not found) != 1:
            return [f"{where}: matches {sum(1 for f in branches if not f)} of oneOf, not exactly one"]
        return []
    found = []
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is(value, name) for name in names):
            return [f"{where}: {value!r} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date":
            try:
                date.fromisoformat(value)
            except ValueError:
                found.append(f"{where}: {value!r} is not a date")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{where}: missing required {name!r}")
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                found += problems(document, properties[key], item, f"{where}.{key}")
            elif isinstance(extra, dict):
                found += problems(document, extra, item, f"{where}.{key}")
            elif properties is not None and extra is not True:
                found.append(f"{where}: {key!r} is not in the schema")
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            found += problems(document, schema["items"], item, f"{where}[{n}]")
    return found


def response_schema(document: dict, path: str, status: str = "200", method: str = "get") -> dict:
    response = resolve(document, document["paths"][path][method]["responses"][status])
    (content,) = response["content"].values()
    return content["schema"]
