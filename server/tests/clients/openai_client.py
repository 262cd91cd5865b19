"""Async Coder's OpenAI-compatible endpoint, driven by the official `openai` Python client.

Run by server/tests/openai_api.rs, which starts the server and a local upstream scripted to
answer these calls in this order. Exits non-zero with a message on the first mismatch.
"""

import json
import os
import sys

import openai

base_url = os.environ["ASYNC_CODER_BASE_URL"]
token = os.environ["ASYNC_CODER_TOKEN"]
client = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=20)


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


# The models the token's user can call (the local server's list).
models = [model.id for model in client.models.list()]
check("local/qwen2.5-coder" in models, f"models: {models}")

# A plain answer.
answer = client.chat.completions.create(
    model="qwen2.5-coder",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
)
check(answer.choices[0].message.content == "Paris.", f"plain: {answer}")
check(answer.choices[0].finish_reason == "stop", f"plain finish: {answer}")
check(answer.usage.prompt_tokens == 12 and answer.usage.completion_tokens == 3, f"plain usage: {answer.usage}")

# A streamed answer, with usage at the end.
stream = client.chat.completions.create(
    model="qwen2.5-coder",
    messages=[{"role": "user", "content": "Say hello"}],
    stream=True,
    stream_options={"include_usage": True},
)
text, finish, usage, chunks = "", None, None, 0
for chunk in stream:
    chunks += 1
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    if chunk.usage:
        usage = chunk.usage
check(text == "Hello world", f"stream text: {text!r}")
check(finish == "stop", f"stream finish: {finish}")
check(usage is not None and usage.completion_tokens == 3, f"stream usage: {usage}")
check(chunks >= 5, f"stream chunks: {chunks}")

tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]

# A streamed tool call: the arguments arrive in pieces.
stream = client.chat.completions.create(
    model="qwen2.5-coder", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools, stream=True
)
calls, finish = {}, None
for chunk in stream:
    for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
        entry = calls.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
        entry["id"] = call.id or entry["id"]
        if call.function:
            entry["name"] = call.function.name or entry["name"]
            entry["arguments"] += call.function.arguments or ""
    if chunk.choices and chunk.choices[0].finish_reason:
        finish = chunk.choices[0].finish_reason
check(finish == "tool_calls", f"tool finish: {finish}")
check(calls[0]["id"] == "call_weather" and calls[0]["name"] == "get_weather", f"tool call: {calls}")
check(json.loads(calls[0]["arguments"]) == {"city": "Paris"}, f"tool arguments: {calls}")

# A tool call, not streamed, then the tool's result sent back.
answer = client.chat.completions.create(
    model="qwen2.5-coder", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=tools
)
call = answer.choices[0].message.tool_calls[0]
check(call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}, f"{answer}")
check(answer.choices[0].finish_reason == "tool_calls", f"{answer}")
answer = client.chat.completions.create(
    model="qwen2.5-coder",
    tools=tools,
    messages=[
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "{\"temperature\": 3}"},
    ],
)
check(answer.choices[0].message.content == "It is 3 degrees in Oslo.", f"{answer}")

# Errors the client knows by their status.
try:
    client.chat.completions.create(model="qwen2.5-coder", messages=[{"role": "user", "content": "hi"}])
    check(False, "a rate-limited call succeeded")
except openai.RateLimitError as error:
    check(error.response.headers.get("retry-after") == "7", f"retry-after: {error.response.headers}")
    check("rate limiting" in error.message, error.message)

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    check(False, "an unknown model answered")
except openai.NotFoundError as error:
    check(error.code == "model_not_found", f"{error.code}: {error.message}")

try:
    stream = client.chat.completions.create(
        model="qwen2.5-coder", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    seen = ""
    for chunk in stream:
        if chunk.choices:
            seen += chunk.choices[0].delta.content or ""
    check(False, "a stream that failed midway ended well")
except openai.APIError as error:
    check(seen == "Partial", f"partial text before the error: {seen!r}")
    check("failed" in error.message or "reached" in error.message, error.message)

try:
    client.chat.completions.create(model="qwen2.5-coder", messages=[{"role": "user", "content": "hi"}])
    check(False, "a refused key answered")
except openai.AuthenticationError as error:
    check("API key" in error.message, error.message)

try:
    openai.OpenAI(base_url=base_url, api_key="acp_not-a-real-token", max_retries=0).models.list()
    check(False, "a wrong token was accepted")
except openai.AuthenticationError:
    pass

try:
    client.chat.completions.create(model="qwen2.5-coder", messages=[])
    check(False, "an empty conversation was accepted")
except openai.BadRequestError as error:
    check("messages" in error.message, error.message)

print("openai client: all checks passed")
