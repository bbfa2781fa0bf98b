"""Drives the official `anthropic` Python client against Moat's scripted Anthropic server.

Usage: python anthropic_client_check.py BASE_URL
Prints one JSON object: what the client parsed, for ScriptedAnthropicServerTests to compare with the
script. The server's queue must hold, in order: a text reply; a streamed reply with text and a tool
call and unknown events; a tool call; a 429 with retry-after-ms then a text reply (the client retries
once); a 529.
"""

import json
import sys

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-scripted", max_retries=0, timeout=60)
MODEL = "scripted-model"
TOOLS = [{
    "name": "list_files",
    "description": "Lists the files under a directory of the workspace.",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}]
MESSAGES = [{"role": "user", "content": "list the files in my workspace"}]
result = {"version": anthropic.__version__}

# 1. Text, not streamed.
message = client.messages.create(model=MODEL, max_tokens=256, system="Be brief.", messages=MESSAGES)
result["text"] = {
    "content": [block.text for block in message.content if block.type == "text"],
    "stop_reason": message.stop_reason,
    "usage": [message.usage.input_tokens, message.usage.output_tokens],
}

# 2. Text and a tool call, streamed: the client's own stream helper assembles the events (and must
#    skip the event and delta types it does not know).
pieces, events = [], []
with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES, tools=TOOLS) as stream:
    for event in stream:
        events.append(event.type)
        if event.type == "text":
            pieces.append(event.text)
    final = stream.get_final_message()
result["streamed"] = {
    "text": "".join(pieces),
    "pieces": len(pieces),
    "calls": [[b.id, b.name, json.dumps(b.input, ensure_ascii=False)] for b in final.content if b.type == "tool_use"],
    "stop_reason": final.stop_reason,
    "usage": [final.usage.input_tokens, final.usage.output_tokens],
    "events": sorted(set(events)),
}

# 3. A tool call, not streamed.
message = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, tools=TOOLS)
result["tool_call"] = {
    "calls": [[b.id, b.name, json.dumps(b.input, ensure_ascii=False)] for b in message.content if b.type == "tool_use"],
    "stop_reason": message.stop_reason,
}

# 4. A 429 with retry-after: the client waits as told and tries once more.
message = client.with_options(max_retries=1).messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
result["after_429"] = [block.text for block in message.content if block.type == "text"]

# 5. A 529: the client reports an overloaded error with the body's type.
try:
    client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    result["overloaded"] = None
except anthropic.APIStatusError as error:
    result["overloaded"] = [error.status_code, error.body["error"]["type"], type(error).__name__]
print(json.dumps(result, ensure_ascii=False))
