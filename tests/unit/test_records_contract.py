"""The written contract (docs/order-system.*) says what the code does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from gateway.records.feedback import FEEDBACK_PATH, FollowUp, FollowUpResult, Resolution
from gateway.records.model import CallRecord
from gateway.records.schema import SCHEMA_PATH

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPENAPI: dict[str, Any] = yaml.safe_load((DOCS / "order-system.openapi.yaml").read_text(encoding="utf-8"))


def test_the_openapi_request_body_is_the_committed_record_schema() -> None:
    body = OPENAPI["paths"]["/work-orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert (DOCS / body["$ref"]).resolve() == SCHEMA_PATH.resolve()


def test_documented_answers_cover_what_the_reference_sink_answers() -> None:
    documented = set(OPENAPI["paths"]["/work-orders"]["post"]["responses"])
    assert {"201", "200", "409", "400", "401", "422"} <= documented


def test_the_record_id_pattern_is_the_model_s() -> None:
    model_pattern = CallRecord.model_json_schema()["properties"]["record_id"]["pattern"]
    assert OPENAPI["components"]["schemas"]["RecordId"]["pattern"] == model_pattern


def _fields(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    return set(model.model_fields), {name for name, f in model.model_fields.items() if f.is_required()}


def test_feedback_payloads_match_the_models() -> None:
    schemas = OPENAPI["components"]["schemas"]
    assert FEEDBACK_PATH in OPENAPI["paths"]
    for name, model in (("Resolution", Resolution), ("FollowUp", FollowUp)):
        properties, required = _fields(model)
        assert set(schemas[name]["properties"]) == properties
        assert set(schemas[name]["required"]) == required
    assert schemas["FollowUp"]["properties"]["result"]["enum"] == [r.value for r in FollowUpResult]
