#pragma once
// A conversation (a Teams channel today, a chat later) written as one HTML page
// and one JSON file while its messages are read in order: posts in time order,
// each followed by its replies. Each call returns the next piece of the file, so
// the caller streams it and nothing but the current message is held.
//
// The HTML is safe to open: message bodies are Graph HTML written by anyone in
// the tenant, so they go through safe_html (an allow-list of tags and attributes;
// no script, style, event handler, form or remote resource survives) and the page
// carries a Content-Security-Policy that forbids scripts as a second line.
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace m365vault::exporting {

// Maps an <img src> of a message body to the exported image's path relative to
// the page, or nullopt when the image is not in the export.
using ImageLink = std::function<std::optional<std::string>(std::string_view src)>;

// Graph message HTML reduced to an allow-list: text (entities kept, stray '<',
// '>' and '&' escaped), simple formatting, lists, tables, links to http(s) and
// mailto only (rel="noopener noreferrer"), images only where `image` resolves
// them (else "[image]"). Other tags are dropped with their attributes and keep
// their text, except script, style, iframe and the like, dropped whole. Unclosed
// tags are closed at the end, so one body cannot spill into the next.
std::string safe_html(std::string_view html, const ImageLink& image);
// Text escaped for HTML content and attribute values.
std::string html_escape(std::string_view text);

class ConversationHtml {
 public:
  // The page's head: `title` (the channel's or chat's name) and `context` (the
  // team's name, or the chat's members).
  std::string begin(std::string_view title, std::string_view context);
  // One message as stored (Graph JSON): sender, time, subject, edited and deleted
  // markers, the body made safe, attachments by name. A reply goes under the
  // post before it (a reply with no post before it opens a thread of its own).
  std::string message(const nlohmann::json& m, bool reply, const ImageLink& image);
  std::string end();

 private:
  std::string close_thread();
  bool in_thread_ = false;
};

// The JSON file: an array of {"item_id", "version_id", "message": <the stored
// JSON, byte for byte>, "replies": [{"item_id", "version_id", "message"}, ...]}.
class ConversationJson {
 public:
  std::string begin();
  std::string message(std::string_view stored, bool reply, const std::string& item_id, const std::string& version_id);
  std::string end();

 private:
  bool any_ = false, in_thread_ = false, any_reply_ = false;
};

}  // namespace m365vault::exporting
