#!/usr/bin/env python3
"""Writes OTLP trace payloads made by the official OpenTelemetry Python SDK, as the Collector's Kafka
exporter forwards them: one ExportTraceServiceRequest per message, in protobuf (`NN.otlp_proto`, the bytes
of `encode_spans`, the encoder the SDK's OTLP exporters use) and in OTLP/JSON (`NN.otlp_json`, one line).

    scripts/otlp-fixtures.py OUT_DIR

Needs PyPI `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-common` (.ci/run installs them in
/var/cache/tokenmeter-ci/venv). The spans: GenAI client spans for OpenAI, Anthropic and Gemini models with
cache and reasoning tokens, under agent spans, next to HTTP and database spans, from two services (one
with a `team` resource attribute, one with only `service.namespace`), one failed call (status error) and
one span with a negative token count. Times and ids are fixed, so the files are the same on every run.

OTLP/JSON: protobuf's generic JSON mapping (`MessageToDict`) writes bytes as base64 and enums as names;
OTLP/JSON (what the Collector writes) has trace and span ids as hex and enums as integers, so those two
are changed after the mapping, nothing else.
"""
import base64
import json
import os
import sys

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

T0 = 1_795_996_800_000_000_000  # 2026-12-01T00:00:00Z in nanoseconds


class CountingIds(IdGenerator):
    """Fixed ids: trace n is 0x5eed...n, span m is 0xa1...m."""

    def __init__(self, base):
        self.trace = base
        self.span = base

    def generate_trace_id(self):
        self.trace += 1
        return (0x5EED << 112) | self.trace

    def generate_span_id(self):
        self.span += 1
        return (0xA1 << 56) | self.span


def chat(tracer, parent, at, system, request_model, response_model, usage, agent=None, error=False, provider_name=None):
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": system,
        "gen_ai.request.model": request_model,
        "gen_ai.response.model": response_model,
        "server.address": "api.example.com",
    }
    if provider_name:
        attributes["gen_ai.provider.name"] = provider_name
    if agent:
        attributes["gen_ai.agent.name"] = agent
    attributes.update(usage)
    span = tracer.start_span(f"chat {request_model}", context=set_span_in_context(parent), kind=SpanKind.CLIENT,
                             attributes=attributes, start_time=at)
    if error:
        span.set_status(Status(StatusCode.ERROR, "rate limited"))
    span.end(end_time=at + 1_500_000_000)


def other(tracer, parent, at, name, attributes):
    span = tracer.start_span(name, context=set_span_in_context(parent), attributes=attributes, start_time=at)
    span.end(end_time=at + 20_000_000)


def batch(resource, base, body):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, id_generator=CountingIds(base))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("fixture.genai", "1.0.0")
    body(tracer)
    provider.shutdown()
    return exporter.get_finished_spans()


def support(tracer):
    # An agent run: two LLM calls and an HTTP call under one invoke_agent span (not an LLM span itself).
    root = tracer.start_span("invoke_agent support-bot", attributes={"gen_ai.operation.name": "invoke_agent",
                                                                     "gen_ai.agent.name": "support-bot"}, start_time=T0)
    chat(tracer, root, T0 + 1_000_000_000, "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
         {"gen_ai.usage.input_tokens": 1800, "gen_ai.usage.output_tokens": 240,
          "gen_ai.usage.cache_read.input_tokens": 1024}, agent="support-bot")
    other(tracer, root, T0 + 3_000_000_000, "GET /orders/{id}", {"http.request.method": "GET",
                                                                 "http.response.status_code": 200})
    chat(tracer, root, T0 + 4_000_000_000, "openai", "o3-mini", "o3-mini-2025-01-31",
         {"gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 2100,
          "gen_ai.usage.reasoning.output_tokens": 1792}, agent="support-bot")
    root.end(end_time=T0 + 7_000_000_000)


def support_more(tracer):
    root = tracer.start_span("invoke_agent support-bot", attributes={"gen_ai.agent.name": "support-bot"},
                             start_time=T0 + 30_000_000_000)
    chat(tracer, root, T0 + 31_000_000_000, "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
         {"gen_ai.usage.input_tokens": 12000, "gen_ai.usage.output_tokens": 650,
          "gen_ai.usage.cache_read.input_tokens": 8000, "gen_ai.usage.cache_creation.input_tokens": 3000},
         agent="support-bot", provider_name="anthropic")
    # A broken instrumentation: a negative count is a rejected span, the rest of the message still counts.
    chat(tracer, root, T0 + 33_000_000_000, "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
         {"gen_ai.usage.input_tokens": -12, "gen_ai.usage.output_tokens": 40}, agent="support-bot")
    chat(tracer, root, T0 + 35_000_000_000, "openai", "gpt-4o", "gpt-4o-2024-08-06",
         {"gen_ai.usage.input_tokens": 3000, "gen_ai.usage.output_tokens": 500}, agent="support-bot", error=True)
    root.end(end_time=T0 + 40_000_000_000)


def research(tracer):
    # No gen_ai.agent.name: the workflow is the service's name; no team: the owner is its namespace.
    root = tracer.start_span("POST /research", kind=SpanKind.SERVER, attributes={"http.request.method": "POST"},
                             start_time=T0 + 10_000_000_000)
    chat(tracer, root, T0 + 11_000_000_000, "gcp.gemini", "gemini-2.5-pro", "gemini-2.5-pro",
         {"gen_ai.usage.input_tokens": 40000, "gen_ai.usage.output_tokens": 3000,
          "gen_ai.usage.cache_read.input_tokens": 30000, "gen_ai.usage.reasoning.output_tokens": 2200})
    other(tracer, root, T0 + 14_000_000_000, "SELECT papers", {"db.system.name": "postgresql",
                                                               "db.operation.name": "SELECT"})
    chat(tracer, root, T0 + 15_000_000_000, "gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash",
         {"gen_ai.usage.input_tokens": 5000, "gen_ai.usage.output_tokens": 800,
          "gen_ai.usage.reasoning.output_tokens": 300})
    chat(tracer, root, T0 + 17_000_000_000, "anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
         {"gen_ai.usage.input_tokens": 2500, "gen_ai.usage.output_tokens": 120,
          "gen_ai.usage.cache_creation.input_tokens": 2000})
    root.end(end_time=T0 + 20_000_000_000)


def to_otlp_json(request):
    message = MessageToDict(request, use_integers_for_enums=True)

    def fix(node):
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(message)
    return json.dumps(message, separators=(",", ":"))


def service(attributes):
    # The SDK's own resource attributes (telemetry.sdk.*), without the random service.instance.id.
    created = Resource.create(attributes)
    return Resource({k: v for k, v in created.attributes.items() if k != "service.instance.id"})


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: otlp-fixtures.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    support_service = service({"service.name": "support-api", "team": "customer-care", "deployment.environment": "prod"})
    research_service = service({"service.name": "research-worker", "service.namespace": "research",
                                "deployment.environment": "staging"})
    messages = [
        batch(support_service, 100, support),
        batch(research_service, 200, research),
        # The Collector batches spans of several services into one request.
        batch(support_service, 300, support_more) + batch(research_service, 400, research_more),
    ]
    for n, spans in enumerate(messages, start=1):
        request = encode_spans(spans)
        with open(os.path.join(out, f"{n:02d}.otlp_proto"), "wb") as f:
            f.write(request.SerializeToString())
        with open(os.path.join(out, f"{n:02d}.otlp_json"), "w") as f:
            f.write(to_otlp_json(request) + "\n")
    print(f"wrote {len(messages)} messages in both encodings to {out}")


def research_more(tracer):
    chat(tracer, None, T0 + 50_000_000_000, "openai", "gpt-4.1", "gpt-4.1-2025-04-14",
         {"gen_ai.usage.input_tokens": 7000, "gen_ai.usage.output_tokens": 900,
          "gen_ai.usage.cache_read.input_tokens": 6000})


if __name__ == "__main__":
    main()
