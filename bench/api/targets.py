#!/usr/bin/env python3
"""Request lists for bench/api/run.sh's wrk runs, drawn from the loaded index:
browse.txt (first pages of random folders and later pages by the cursors the API
returned), browse_past.txt (the same at random past instants), search.txt (common words, words of real subjects, two words, phrases,
people, some with an owner filter) and items.txt (random item ids)."""
import argparse
import datetime
import json
import random
import subprocess
import urllib.parse
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--token", required=True)
ap.add_argument("--dsn", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
random.seed(7)


def sql(q):
    out = subprocess.run(["psql", a.dsn, "-AtF", "\t", "-c", q], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def get(path):
    req = urllib.request.Request(a.url + path, headers={"Authorization": "Bearer " + a.token})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def later_pages(firsts):
    """Pages 2 and 3 of the first 150 by their real cursors: what a user paging through costs."""
    out = []
    for t in firsts[:150]:
        page = get(t)
        for _ in range(2):
            if not page.get("next_cursor"):
                break
            nxt = t + "&cursor=" + urllib.parse.quote(page["next_cursor"])
            out.append(nxt)
            page = get(nxt)
    return out


folders = sql("SELECT c.id, c.owner_id FROM containers c TABLESAMPLE SYSTEM (20)"
              " WHERE c.category = 'mail' ORDER BY random() LIMIT 2000")
browse = [f"/api/v1/browse?owner={o}&category=mail&container={c}&limit=100" for c, o in folders]
later = later_pages(browse)
with open(f"{a.out}/browse.txt", "w") as f:
    f.write("\n".join(browse + later) + "\n")

# The same pages at past instants, drawn evenly over the index's history: early
# ones, where most of a folder's versions were not there yet, cost the most.
(lo, hi), = sql("SELECT extract(epoch FROM min(from_at)), extract(epoch FROM max(from_at)) FROM item_versions")
past = []
for t in browse:
    when = datetime.datetime.fromtimestamp(random.uniform(float(lo), float(hi)), datetime.timezone.utc)
    past.append(t + "&at=" + urllib.parse.quote(when.strftime("%Y-%m-%dT%H:%M:%SZ")))
past_later = later_pages(past)
with open(f"{a.out}/browse_past.txt", "w") as f:
    f.write("\n".join(past + past_later) + "\n")

common = [w for (w,) in sql("SELECT word FROM ts_stat('SELECT search FROM item_versions TABLESAMPLE SYSTEM (0.2)')"
                            " WHERE length(word) > 3 AND word !~ '[@.]' ORDER BY ndoc DESC LIMIT 30")]
subjects = [s.split() for (s,) in sql("SELECT subject FROM item_versions TABLESAMPLE SYSTEM (0.05) LIMIT 3000")]
subjects = [s for s in subjects if len(s) >= 2]
owners = [o for (o,) in sql("SELECT id FROM owners ORDER BY random() LIMIT 200")]
people = ["megan", "adele", "diego", "priya", "lars.berg", "omar haddad", "nadia", "tomas"]
queries = []
for i in range(3000):
    s = random.choice(subjects)
    k = random.random()
    if k < 0.2:
        q = random.choice(common)
    elif k < 0.5:
        q = random.choice(s)
    elif k < 0.7:
        q = " ".join(random.sample(s, 2))
    elif k < 0.85:
        j = random.randrange(len(s) - 1)
        q = '"' + s[j] + " " + s[j + 1] + '"'
    else:
        q = random.choice(people)
    t = "/api/v1/search?q=" + urllib.parse.quote(q)
    if random.random() < 0.25:
        t += "&owner=" + random.choice(owners)
    queries.append(t)
with open(f"{a.out}/search.txt", "w") as f:
    f.write("\n".join(queries) + "\n")

ids = [i for (i,) in sql("SELECT id FROM items TABLESAMPLE SYSTEM (0.2) LIMIT 5000")]
with open(f"{a.out}/items.txt", "w") as f:
    f.write("\n".join(f"/api/v1/items/{i}" for i in ids) + "\n")
print(f"targets: {len(browse)} folders + {len(later)} later pages, the same at past instants"
      f" + {len(past_later)} later pages, {len(queries)} searches, {len(ids)} items")
