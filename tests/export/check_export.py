#!/usr/bin/python3
"""Reads exported files with parsers that know nothing of our code (Python's
zipfile, email, mailbox, the icalendar and vobject packages from Debian) and
prints what they saw as JSON.
  check_export.py zip FILE.zip      every entry: name, size, sha256, and per kind
                                    what its parser found; manifest.json checked
  check_export.py ics FILE.ics | vcf FILE.vcf | mbox FILE.mbox | eml FILE.eml
A Teams page (.html) is read with Python's html.parser: its messages (id, post or
reply, under which post), its images (and whether the zip has them), and
everything that could run or fetch: script or style elements, event handler
attributes, javascript: or remote URLs, iframes and the like.
"""
import email
import email.policy
import html.parser
import posixpath
import hashlib
import io
import json
import mailbox
import re
import sys
import tempfile
import zipfile

import icalendar
import vobject


def check_eml(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    defects = [type(d).__name__ for part in msg.walk() for d in part.defects]
    return {"subject": str(msg["subject"]), "message_id": str(msg["message-id"]), "defects": defects,
            "has_body": msg.get_body(preferencelist=("plain", "html")) is not None}


def check_ics(raw):
    cal = icalendar.Calendar.from_ical(raw)
    events = []
    for ev in cal.walk("VEVENT"):
        events.append({"uid": str(ev.get("uid")), "summary": str(ev.get("summary", "")),
                       "rrule": ev["rrule"].to_ical().decode() if "rrule" in ev else None,
                       "recurrence_id": ev.decoded("recurrence-id").isoformat() if "recurrence-id" in ev else None,
                       "exdates": sum(len(x.dts) for x in (ev["exdate"] if isinstance(ev.get("exdate"), list) else [ev["exdate"]])) if "exdate" in ev else 0,
                       "start": ev.decoded("dtstart").isoformat(),
                       "attendees": len(ev["attendee"]) if isinstance(ev.get("attendee"), list) else (1 if "attendee" in ev else 0),
                       "organizer": str(ev.get("organizer", ""))})
    return {"events": events, "timezones": len(cal.walk("VTIMEZONE"))}


def check_vcf(raw):
    cards = []
    for card in vobject.readComponents(raw.decode("utf-8")):
        cards.append({"fn": card.fn.value,
                      "n": [card.n.value.family, card.n.value.given] if hasattr(card, "n") else None,
                      "emails": [e.value for e in card.contents.get("email", [])],
                      "tels": [t.value for t in card.contents.get("tel", [])],
                      "note": card.note.value if hasattr(card, "note") else None,
                      "org": card.org.value if hasattr(card, "org") else None,
                      "uid": card.uid.value if hasattr(card, "uid") else None})
    return {"cards": cards}


def check_mbox(raw):
    # mboxrd: one '>' comes off every line that starts with >+From .
    with tempfile.NamedTemporaryFile(suffix=".mbox") as f:
        f.write(raw)
        f.flush()
        out = []
        for key in mailbox.mbox(f.name).iterkeys():
            body = mailbox.mbox(f.name).get_bytes(key, from_=False)
            body = re.sub(rb"(?m)^>(>*From )", rb"\1", body)
            out.append({"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)})
        return {"messages": out}


CHECKS = {".eml": check_eml, ".ics": check_ics, ".vcf": check_vcf, ".mbox": check_mbox}


class PageParser(html.parser.HTMLParser):
    RUNNABLE = {"script", "iframe", "object", "embed", "svg", "math", "form", "frame", "frameset", "applet",
                "base", "link", "meta-refresh", "input", "button", "textarea", "select"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.messages, self.images, self.hazards = [], [], []
        self.post = None
        self.in_head = False
        self.text = []

    def handle_endtag(self, tag):
        if tag == "head":
            self.in_head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "div" and "message" in classes:
            kind = "reply" if "reply" in classes else "post"
            mid = (a.get("id") or "")[2:]
            if kind == "post":
                self.post = mid
            self.messages.append({"id": mid, "kind": kind, "post": self.post if kind == "reply" else None})
        if tag == "article":
            self.post = None
        if tag == "img":
            self.images.append(a.get("src"))
        if tag in self.RUNNABLE:
            self.hazards.append("element " + tag)
        if tag == "head":
            self.in_head = True
        if tag in ("style", "meta") and not self.in_head:  # the page's own are in its head
            self.hazards.append(tag + " element in the body")
        for k, v in attrs:
            if k.startswith("on"):
                self.hazards.append("attribute " + k)
            if k == "style":
                self.hazards.append("style attribute")
            if k in ("href", "src", "action", "formaction", "background", "poster") and v is not None:
                low = v.strip().lower()
                if low.startswith("javascript:") or low.startswith("data:") or low.startswith("vbscript:"):
                    self.hazards.append(k + "=" + v)
                if k != "href" and (":" in low.split("/")[0] or low.startswith("//")):
                    self.hazards.append("remote " + k + "=" + v)

    def handle_data(self, data):
        self.text.append(data)


def check_html(raw):
    p = PageParser()
    p.feed(raw.decode("utf-8"))
    p.close()
    return {"messages": p.messages, "images": p.images, "hazards": p.hazards, "text": "".join(p.text)}


def check_conversation_json(raw):
    text = raw.decode("utf-8")
    threads = json.loads(text)
    decoder = json.JSONDecoder()

    # Each message's own bytes, as they stand in the file: the value after its
    # version id's "message" key, hashed so the test can hold them to the stored hash.
    def raw_sha(version_id):
        key = '"version_id": ' + json.dumps(version_id) + ', "message": '
        at = text.find(key)
        if at < 0:
            return None
        start = at + len(key)
        _, end = decoder.raw_decode(text, start)
        return hashlib.sha256(text[start:end].encode("utf-8")).hexdigest()

    out = []
    for t in threads:
        out.append({"version_id": t.get("version_id"), "post_missing": t.get("post_missing", False),
                    "id": t["message"]["id"] if "message" in t else None,
                    "sha256": raw_sha(t["version_id"]) if "message" in t else None,
                    "replies": [{"version_id": r["version_id"], "id": r["message"]["id"], "sha256": raw_sha(r["version_id"])}
                                for r in t["replies"]]})
    return {"threads": out}


CHECKS[".html"] = check_html
CHECKS["/messages.json"] = check_conversation_json


def check_zip(path):
    z = zipfile.ZipFile(path)
    bad = z.testzip()
    entries = {}
    for info in z.infolist():
        data = z.read(info)
        e = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "utf8_flag": bool(info.flag_bits & 0x800),
             "data_descriptor": bool(info.flag_bits & 0x8)}
        for ext, fn in CHECKS.items():
            if info.filename.endswith(ext):
                e["parsed"] = fn(data)
        entries[info.filename] = e
    for name, e in entries.items():
        if name.endswith(".html") and "parsed" in e:
            base = posixpath.dirname(name)
            e["parsed"]["unresolved_images"] = [src for src in e["parsed"]["images"]
                                                if posixpath.normpath(posixpath.join(base, src)) not in entries]
    result = {"testzip": bad, "entries": entries}
    if "manifest.json" in entries:
        manifest = json.loads(z.read("manifest.json"))
        mismatched = [f["path"] for f in manifest["files"]
                      if f["path"] not in entries or entries[f["path"]]["sha256"] != f["sha256"]
                      or entries[f["path"]]["size"] != f["size"]]
        unlisted = [n for n in entries if n != "manifest.json" and n not in {f["path"] for f in manifest["files"]}]
        result["manifest"] = {"mismatched": mismatched, "unlisted": unlisted, "files": len(manifest["files"]),
                              "faults": manifest["faults"], "skipped": manifest["skipped"], "summary": manifest["summary"],
                              "items": {i["version_id"]: f["path"] for f in manifest["files"] for i in f["items"]}}
    return result


def main():
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "zip":
        print(json.dumps(check_zip(path)))
    else:
        print(json.dumps(CHECKS["." + kind](open(path, "rb").read())))


main()
