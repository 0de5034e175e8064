#pragma once
// Teams channels into the repository (category teams; the owner is the team, of
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

#include "drive.hpp"

namespace m365vault::backup {

// One team's channels and messages in its own snapshot (team, teams). Throws
// GraphError / Error when the pass fails (the caller records it against the team).
boost::asio::awaitable<void> backup_team(DriveEnv& env, const storage::Owner& team);

}  // namespace m365vault::backup
