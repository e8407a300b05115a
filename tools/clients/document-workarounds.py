"""TEMPORARY pre-processing of the served /openapi.json before the client
generators read it (tools/clients-run). Each rewrite below works around a
document that a mainstream generator cannot use today; each is to be
deleted, with this file, once api/src/openapi.rs serves a document without
the problem. Until then the round trips test a slightly edited document,
and `make clients` says so on every run.

1. Boolean schemas (`"_version": false` in create and update bodies).
   openapi-python-client 0.29.1 refuses the whole document:
     Failed to parse OpenAPI document
     paths./api/users.post.requestBody.other.content.application/json
       .schema.other.properties._version.other
       Input should be a valid dictionary or instance of Schema
       [type=model_type, input_value=False, input_type=bool]
   Being removed from the document on branch issue11-doc.

2. The recursive `Value` schema (an array's items and an object's values
   are `Value` again). Neither generator can express the recursion:
   - openapi-python-client 0.29.1 skips every POST and PUT:
       WARNING parsing POST /api/users within users. Endpoint will not be
       generated. Could not find reference in parsed models or enums
       Unable to parse schema /components/schemas/Value
       Invalid property in union ... {"type": "array", "items":
       {"$ref": "#/components/schemas/Value"}}
   - openapi-typescript 7.13.0 emits a type tsc 5.9.3 rejects, which
     turns every request body into one no record can satisfy:
       schema.d.ts: error TS2502: 'Value' is referenced directly or
       indirectly in its own type annotation.
   Rewritten here to nested arrays and objects of any values: the top
   level keeps the document's number limits, nested values lose them.

Reads the document on stdin, writes the edited one on stdout, and lists
each edit on stderr.
"""

import json
import sys

VALUE_REF = "#/components/schemas/Value"


def drop_boolean_schemas(document):
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            for media in body.get("content", {}).values():
                properties = media.get("schema", {}).get("properties", {})
                for name in [n for n, schema in properties.items() if isinstance(schema, bool)]:
                    del properties[name]
                    yield f"{method.upper()} {path}: boolean schema of `{name}` removed"


def unroll_recursive_value(document):
    value = document.get("components", {}).get("schemas", {}).get("Value")
    if not value:
        return
    for branch in value.get("anyOf", []):
        if branch.get("items") == {"$ref": VALUE_REF}:
            branch["items"] = {}
            yield "Value: array items are any value"
        if branch.get("additionalProperties") == {"$ref": VALUE_REF}:
            branch["additionalProperties"] = {}
            yield "Value: object values are any value"


def main():
    document = json.load(sys.stdin)
    edits = [*drop_boolean_schemas(document), *unroll_recursive_value(document)]
    for edit in edits:
        print(f"document-workarounds: {edit}", file=sys.stderr)
    if not edits:
        print(
            "document-workarounds: nothing left to edit: delete this script and its step "
            "in tools/clients-run",
            file=sys.stderr,
        )
    json.dump(document, sys.stdout)


if __name__ == "__main__":
    main()
