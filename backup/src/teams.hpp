#pragma once
// Teams channels and chats into the repository (category teams; the owner is the team, of
// kind team, whose graph id is its group's). CONTRACT.md 13.
//
// Channels (standard, private, shared) are containers, listed each run; each also
// holds an item of kind "channel" with the channel's JSON (membershipType, ...).
// Per channel, the first run lists every message (/messages: the delta only
// covers a recent window), then walks the channel's message delta from scratch;
// later runs follow the saved deltaLink. Posts and their replies are items of
// kind "message" stored losslessly (the Graph JSON, without the inline replies)
// with metadata for browse and search; inline images (hosted contents) are items
// of kind "hosted_content" holding the image bytes. Graph ids nest, so that a
// post's replies and images can be found and closed with it:
//   {channel}/{post}, {channel}/{post}/{reply}, {message path}/hc/{hosted content id}.
// A message reported with deletedDateTime (or, as seen in the wild, with an empty
// body and no sender) closes the validity of its stored version, its replies and
// images: browsing before the deletion still shows them.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "drive.hpp"

namespace m365vault::backup {

// One team's channels and messages in its own snapshot (team, teams). Throws
// GraphError / Error when the pass fails (the caller records it against the team).
boost::asio::awaitable<void> backup_team(DriveEnv& env, const storage::Owner& team);

// Chats (1:1, group and meeting chats), also category teams. A chat is one
// conversation shared by its members: it is an owner of its own, of kind chat,
// found through its members' listings and stored once whoever found it. Its
// container (graph id: the chat id) holds an item of kind "chat" with the chat's
// JSON (type, topic, members) and its messages, as channel posts are stored
// ({chat}/{message}, {chat}/{message}/hc/{id}); system events included. Chat
// messages have no delta: each run lists what was modified since the last
// completed listing (with an overlap), newest first; see ChatPass in teams.cpp.

// The chats `user` is a member of, members expanded. Throws GraphError
// (is_access_denied: the tenant does not let the app read chats).
boost::asio::awaitable<std::vector<nlohmann::json>> list_chats(DriveEnv& env, const storage::Owner& user);

// One chat's messages in its own snapshot (chat, teams); `listed` is the chat as
// a member's listing gave it. Throws as backup_team.
boost::asio::awaitable<void> backup_chat(DriveEnv& env, const storage::Owner& chat, const nlohmann::json& listed);

// The chat as GET /chats/{id}?$expand=members gives it (a run whose selection
// names a chat); nullopt when Graph does not know it (404). Throws GraphError.
boost::asio::awaitable<std::optional<nlohmann::json>> get_chat(DriveEnv& env, const std::string& chat_id);

// A chat that none of its members lists any more: it was deleted, or every member
// this tenant backs up left it; either way no listing will report its changes
// again. In a snapshot (chat, teams) of its own, its container closes with every
// item in it (all versions kept: browsing before now still shows them), its
// message cursor is cleared (should it come back, it is listed whole again) and
// the owner is marked deleted with the reason. The caller decides when that is
// safe: only after every member's listing completed in the same run.
boost::asio::awaitable<void> close_chat(DriveEnv& env, const storage::Owner& chat);

}  // namespace m365vault::backup
