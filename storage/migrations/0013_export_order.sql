-- The order a download walks a folder's frozen items in. Empty for everything
-- but Teams: there it threads a channel (inline images first, then each post in
-- time order followed by its replies in time order), so that the channel's
-- HTML page and JSON file are written in one pass over bounded pages. Compared
-- byte for byte (COLLATE "C"): a locale collation would ignore the separators.
ALTER TABLE export_items ADD COLUMN sort_key text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX export_items_order ON export_items (export_id, folder, sort_key, seq);
