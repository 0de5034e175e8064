-- Teams chats (1:1, group and meeting chats) are owners of their own, of kind
-- 'chat': a chat is one conversation shared by its members, stored once whichever
-- member's listing found it (category 'teams', like channels).
ALTER TABLE owners DROP CONSTRAINT owners_kind_check;
ALTER TABLE owners ADD CONSTRAINT owners_kind_check
    CHECK (kind IN ('user', 'group', 'site', 'team', 'drive', 'chat'));
