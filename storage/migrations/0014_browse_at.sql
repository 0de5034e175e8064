-- Browse at a past instant: a folder page keeps the versions visible then, in
-- name order. item_versions_browse had only the key, so every version of the
-- folder was fetched from the table to read its validity (one random page each:
-- a folder of 2,300 versions read 2,300 pages to show 100 items at an early
-- instant). With the validity columns included, the page's ids come from an
-- index-only scan and only the rows shown are fetched. It replaces the old index,
-- whose key it has (at now, item_versions_browse_now still serves).
CREATE INDEX item_versions_browse_at ON item_versions (container_id, name, id) INCLUDE (from_at, to_at);
DROP INDEX item_versions_browse;
