-- Fills the catalog of an empty, migrated m365vault database with a synthetic
-- tenant for bench/api/run.sh: :owners mailboxes of :folders folders each (sizes
-- skewed: the biggest folder of a mailbox holds about a fifth of its mail, the
-- smallest a few hundred), :items messages with an open version and :old_versions
-- earlier, closed versions. Subjects draw 3 to 8 of 6,000 made-up words with a
-- skewed frequency (a few words are in 10 % of subjects, most are rare), senders
-- and recipients from 2,500 people, so full-text search has common and rare
-- words as real mail does. Server-side generate_series: COPY from a client would
-- only move the same rows through a pipe. The search vector is the catalog's own
-- expression (storage/src/catalog.cpp, Catalog::commit_page).
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SELECT setseed(0.42) \gset

BEGIN;
INSERT INTO tenants (id, name, directory_id, client_id, auth_kind, sealed_secret, seal_context)
VALUES ('0b0b0b0b-0000-4000-8000-000000000001', 'bench', 'bench.example', 'bench-app', 'secret', '\x00', 'bench');

CREATE TEMP TABLE words AS
  WITH syl(s, n) AS (SELECT s, row_number() OVER () - 1 FROM unnest(ARRAY[
    'ka','lo','mi','ne','ru','ta','vo','si','pe','da','fu','go','hi','ja','be','zo','qua','tre','pli','mon',
    'sta','gri','vel','dor','nix','tal','bur','cen','fro','lun']) s)
  SELECT k, a.s || b.s || CASE WHEN k >= 900 THEN c.s ELSE '' END AS w
  FROM generate_series(0, 5999) k
  JOIN syl a ON a.n = k % 30 JOIN syl b ON b.n = (k / 30) % 30 JOIN syl c ON c.n = (k / 900) % 30;
-- Words and people are looked up by key, never by subscripting a big array: an array
-- of thousands of entries is TOASTed, and every subscript of it read from a row
-- decompresses the whole array again (14 times per message, about 0.7 ms a row:
-- hours for 5 M rows).
ALTER TABLE words ADD PRIMARY KEY (k);
CREATE TEMP TABLE people AS
  SELECT n::int AS n, f || '.' || l || '@contoso' || (n % 7) || '.example' AS p
  FROM (SELECT f, l, row_number() OVER () AS n FROM
    unnest(ARRAY['adele','alex','allan','bianca','brian','christie','debra','diego','emily','enrico','grady','henrietta',
                 'irvin','isaiah','johanna','joni','lee','lidia','lynne','megan','miriam','nestor','patti','pradeep',
                 'raul','sanjay','sofia','tomas','ursula','vance','wanda','xavier','yolanda','zachary','aiko','bruno',
                 'chen','dagny','eero','farah','gunnar','hana','ivo','jaana','kofi','lars','mei','nadia','omar','priya']) f,
    unnest(ARRAY['vance','wilber','smith','jones','garcia','muller','rossi','tanaka','kowalski','nguyen','okafor','silva',
                 'larsen','dubois','novak','haddad','kim','santos','schmidt','ivanova','costa','berg','moreau','patel',
                 'ali','chen','lopez','meyer','ricci','sato','hughes','brown','kaur','weber','fischer','horvat','popescu',
                 'nagy','yilmaz','cohen','fernandes','andersen','virtanen','oconnor','walsh','murphy','bianchi','ward',
                 'reyes','ozturk']) l) x;
ALTER TABLE people ADD PRIMARY KEY (n);

INSERT INTO owners (id, tenant_id, kind, graph_id, display_name, upn, mail)
SELECT ('0b0b0b0b-0000-4000-8000-' || lpad(to_hex(o), 12, '0'))::uuid, '0b0b0b0b-0000-4000-8000-000000000001', 'user',
       'user-' || o, 'User ' || o, 'user' || o || '@bench.example', 'user' || o || '@bench.example'
FROM generate_series(1, :owners) o;

-- Container ids: owner o's folder f is (o - 1) * :folders + f + 1; folder 0 is the inbox.
INSERT INTO containers (id, owner_id, category, graph_id) OVERRIDING SYSTEM VALUE
SELECT (o - 1) * :folders + f + 1, ('0b0b0b0b-0000-4000-8000-' || lpad(to_hex(o), 12, '0'))::uuid, 'mail', 'folder-' || o || '-' || f
FROM generate_series(1, :owners) o, generate_series(0, :folders - 1) f;
INSERT INTO container_versions (container_id, parent_id, display_name, well_known, path, from_at)
SELECT id, NULL, CASE WHEN (id - 1) % :folders = 0 THEN 'Inbox' ELSE 'Folder ' || ((id - 1) % :folders) END,
       CASE WHEN (id - 1) % :folders = 0 THEN 'inbox' END,
       CASE WHEN (id - 1) % :folders = 0 THEN 'Inbox' ELSE 'Folder ' || ((id - 1) % :folders) END, now() - interval '400 days'
FROM containers;

INSERT INTO items (id, owner_id, category, graph_id, kind, first_seen_at) OVERRIDING SYSTEM VALUE
SELECT i, ('0b0b0b0b-0000-4000-8000-' || lpad(to_hex(1 + i % :owners), 12, '0'))::uuid, 'mail', 'msg-' || i, 'message',
       now() - interval '400 days'
FROM generate_series(1, :items) i;

-- The indexes are built once after the load (their definitions kept as the migrations made them).
CREATE TEMP TABLE saved_indexes AS
  SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'item_versions' AND indexname <> 'item_versions_pkey';
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexname FROM saved_indexes LOOP EXECUTE format('DROP INDEX %I', r.indexname); END LOOP;
END $$;

-- Versions: every item's open one, and :old_versions closed ones of the first items.
INSERT INTO item_versions (item_id, owner_id, category, container_id, from_at, to_at, name, subject, sender, recipients,
                           received_at, size, change_key, body_preview, content_type, content_size, search)
SELECT item_id, owner_id, 'mail', container_id, from_at, to_at, subject, subject, sender, recipients, received_at, size,
       'ck-' || item_id || '-' || old, body_preview, 'message/rfc822', size,
       setweight(to_tsvector('simple', coalesce(subject, '') || ' ' || coalesce(subject, '')), 'A') ||
       setweight(to_tsvector('simple', coalesce(sender, '') || ' ' || array_to_string(recipients, ' ') || ' ' ||
         translate(coalesce(sender, '') || ' ' || array_to_string(recipients, ' '), '@.<>"', '     ')), 'B') ||
       setweight(to_tsvector('simple', ''), 'C') ||
       setweight(to_tsvector('simple', coalesce(body_preview, '')), 'D')
FROM (
  SELECT x.item_id, x.old, x.owner_id, x.container_id, x.from_at, x.to_at,
         CASE WHEN x.old THEN 'RE: ' ELSE '' END || s.subject AS subject,
         ps.p AS sender, ARRAY[r1.p, r2.p] AS recipients, x.received_at, x.size, s.preview AS body_preview
  FROM (
    SELECT g.i AS item_id, g.old, ('0b0b0b0b-0000-4000-8000-' || lpad(to_hex(1 + g.i % :owners), 12, '0'))::uuid AS owner_id,
           (g.i % :owners) * :folders + floor(:folders * power(random(), 2))::int + 1 AS container_id,
           t.received - CASE WHEN g.old THEN interval '30 days' ELSE interval '0' END AS from_at,
           CASE WHEN g.old THEN t.received END AS to_at,
           1 + floor(2500 * power(random(), 2))::int AS sender_n,
           1 + floor(2500 * random())::int AS to1_n, 1 + floor(2500 * random())::int AS to2_n,
           t.received AS received_at, 2000 + floor(200000 * power(random(), 3))::bigint AS size
    -- The closed versions first: in a real catalog a version is stored before the
    -- one that closes it, so old versions have the lower ids. Stored last, they
    -- held the 500,000 highest ids, and every newest-first search scanned past them.
    FROM (SELECT i, true AS old FROM generate_series(1, :old_versions) i
          UNION ALL SELECT i, false FROM generate_series(1, :items) i) g
    -- A date per item over the past year, the same for its open and its old version
    -- (a hash of the id: random() here was evaluated once, giving every message one date).
    CROSS JOIN LATERAL (SELECT now() - interval '365 days' * (((g.i * 2654435761) % 1000003) / 1000003.0) AS received) t
  ) x
  JOIN people ps ON ps.n = x.sender_n
  JOIN people r1 ON r1.n = x.to1_n
  JOIN people r2 ON r2.n = x.to2_n
  -- 3 to 8 words each, drawn per message (the generate_series is correlated, so
  -- random() runs for every word of every message).
  CROSS JOIN LATERAL (
    SELECT (SELECT string_agg(w.w, ' ') FROM (SELECT floor(6000 * power(random(), 2.5))::int AS k
                                               FROM generate_series(1, 3 + (x.item_id % 6))) d JOIN words w USING (k)) AS subject,
           (SELECT string_agg(w.w, ' ') FROM (SELECT floor(6000 * power(random(), 1.5))::int AS k
                                               FROM generate_series(1, 3 + (x.item_id % 6))) d JOIN words w USING (k)) AS preview
  ) s
) v;

DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexdef FROM saved_indexes LOOP EXECUTE r.indexdef; END LOOP;
END $$;
COMMIT;  -- one transaction: a failed load leaves an empty catalog, and a rerun starts over
-- VACUUM, not only ANALYZE: a live catalog's visibility map is kept by autovacuum
-- (insert-triggered since PostgreSQL 13); without it, runs before autovacuum came
-- by measured index-only scans (browse at a past instant) that read the table for
-- every index entry.
VACUUM (ANALYZE);
SELECT (SELECT count(*) FROM item_versions) AS item_versions, (SELECT count(*) FROM items) AS items,
       (SELECT count(*) FROM containers) AS folders, (SELECT count(*) FROM owners) AS owners;
