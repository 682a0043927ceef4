"""The committed JSON Schema of the call record, generated from gateway.records.model.

``python -m gateway.records.schema`` rewrites ``call-record.v1.schema.json``; a unit test fails
when the committed file differs from what the model generates, so the two never drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gateway.records.model import SCHEMA_VERSION, CallRecord

SCHEMA_PATH = Path(__file__).with_name("call-record.v1.schema.json")
SCHEMA_ID = "urn:hotline-gateway:schema:call-record:v1"


def render() -> str:
    # Serialization mode: the schema describes the JSON the gateway sends, every key present.
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **CallRecord.model_json_schema(mode="serialization"),
    }
    schema["title"] = f"Call record ({SCHEMA_VERSION})"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
