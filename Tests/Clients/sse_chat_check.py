"""Reads POST /api/chat's live stream with httpx-sse, a real server-sent events client.

Usage: python sse_chat_check.py URL TOKEN MESSAGE
Prints one JSON object: the response's content type and every event (name and parsed data), in order.
httpx-sse refuses a response that is not text/event-stream, and parses the events as a browser does.
"""

import json
import sys

import httpx
from httpx_sse import connect_sse


def main() -> None:
    url, token, message = sys.argv[1:4]
    events = []
    with httpx.Client(timeout=120) as client:
        with connect_sse(
            client, "POST", url, json={"message": message}, headers={"Authorization": f"Bearer {token}"}
        ) as source:
            content_type = source.response.headers.get("content-type")
            for event in source.iter_sse():
                events.append({"event": event.event, "data": event.json()})
    print(json.dumps({"content_type": content_type, "events": events}))


if __name__ == "__main__":
    main()
