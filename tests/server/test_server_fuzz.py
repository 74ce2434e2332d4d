"""Schema fuzzing of the live worker: every route of its own OpenAPI document,
bounded examples, no 5xx, and every response as documented (status code,
content type, body schema, headers)."""
from __future__ import annotations

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

pytestmark = pytest.mark.slow

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]
EXAMPLES = 15  # per operation: the whole run stays well under a minute here


@pytest.fixture(scope="module")
def fuzz_server(server_factory):
    # a short context bounds the work any fuzzed request can ask for
    return server_factory("--max-model-len", "32", "--max-num-seqs", "8", "--max-queue", "8")


def test_every_route_answers_fuzzed_requests_as_documented(fuzz_server):
    doc = httpx.get(f"{fuzz_server.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/completions", "/v1/chat/completions", "/tokenize",
                                              "/detokenize", "/v1/models", "/health", "/ready", "/metrics"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(base_url=fuzz_server.url, checks=CHECKS)

        fuzz()
