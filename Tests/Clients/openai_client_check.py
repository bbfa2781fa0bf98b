"""Drives the official `openai` Python client against Moat's scripted model server.

Usage: python openai_client_check.py BASE_URL
Prints one JSON object: what the client parsed from four rounds (text and a tool call, each without
and with streaming), for ScriptedModelServerTests to compare with the script. The server's queue must
hold, in order: a text reply, a text reply, a tool call, a tool call.
"""

import json
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-scripted", max_retries=0, timeout=60)
MODEL = "scripted-model"
TOOLS = [{
    "type": "function",
    "function": {
        "name": "list_files",
        "description": "Lists the files under a directory of the workspace.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
}]
MESSAGES = [{"role": "user", "content": "list the files in my workspace"}]
result = {"version": openai.__version__}

# 1. Text, not streamed.
completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)
choice = completion.choices[0]
result["text"] = {
    "content": choice.message.content,
    "finish_reason": choice.finish_reason,
    "usage": [completion.usage.prompt_tokens, completion.usage.completion_tokens],
}

# 2. Text, streamed with usage.
pieces, finish, usage = [], None, None
for chunk in client.chat.completions.create(
    model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
):
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
    if chunk.usage:
        usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
result["streamed_text"] = {"content": "".join(pieces), "chunks": len(pieces), "finish_reason": finish, "usage": usage}

# 3. A tool call, not streamed.
completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS)
message = completion.choices[0].message
result["tool_call"] = {
    "content": message.content,
    "calls": [[c.id, c.function.name, c.function.arguments] for c in message.tool_calls or []],
    "finish_reason": completion.choices[0].finish_reason,
}

# 4. A tool call, streamed: the client's own stream helper assembles the deltas.
helper = client.chat.completions if hasattr(client.chat.completions, "stream") else client.beta.chat.completions
with helper.stream(model=MODEL, messages=MESSAGES, tools=TOOLS) as stream:
    final = stream.get_final_completion()
message = final.choices[0].message
result["streamed_tool_call"] = {
    "calls": [[c.id, c.function.name, c.function.arguments] for c in message.tool_calls or []],
    "finish_reason": final.choices[0].finish_reason,
}
print(json.dumps(result))
