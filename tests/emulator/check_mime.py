#!/usr/bin/env python3
"""Parses a MIME file with Python's standard email package (a parser that knows
nothing of the emulator) and prints what a mail client would see, as JSON."""
import email
import email.policy
import json
import sys

raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=email.policy.default)
defects = [type(d).__name__ for part in msg.walk() for d in part.defects]
attachments = []
for part in msg.walk():
    if part.is_multipart():
        continue
    disp = part.get_content_disposition()
    if disp in ("attachment", "inline") and part.get_filename() is not None or part.get_content_type() == "message/rfc822":
        payload = part.get_payload(decode=True)
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()[0] if isinstance(part.get_payload(), list) else part.get_payload()
            payload = inner.as_bytes() if hasattr(inner, "as_bytes") else b""
        attachments.append({"name": part.get_filename(), "type": part.get_content_type(),
                            "size": len(payload or b""), "inline": disp == "inline"})
text = msg.get_body(preferencelist=("plain",))
html = msg.get_body(preferencelist=("html",))
print(json.dumps({
    "subject": str(msg["subject"]),
    "from": str(msg["from"]),
    "message_id": str(msg["message-id"]),
    "date": str(msg["date"]),
    "received": len(msg.get_all("received") or []),
    "mime_version": str(msg["mime-version"]),
    "content_type": msg.get_content_type(),
    "defects": defects,
    "text": text.get_content() if text is not None else None,
    "has_html": html is not None,
    "attachments": attachments,
    "crlf_only": b"\n" not in raw.replace(b"\r\n", b""),
}, ensure_ascii=False))
