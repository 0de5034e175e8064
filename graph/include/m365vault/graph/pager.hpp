#pragma once
// Walking Graph collections and delta rounds (CONTRACT.md §1, §3). Links are
// opaque absolute URLs, fetched verbatim (query options are baked into them) with
// the same Prefer headers. The caller persists the cursor of every page in the
// same transaction as its items: next_link while the round goes on, delta_link
// when it ended; a restarted daemon builds a new pager from that cursor.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "m365vault/graph/client.hpp"

namespace m365vault::graph {

struct Page {
  std::vector<nlohmann::json> items;    // as sent, "@removed" entries included; may be empty
  std::optional<std::string> next_link;   // the round goes on: the cursor to save
  std::optional<std::string> delta_link;  // the round ended: the cursor for the next round
  // This page belongs to a new full round that the pager started itself after a
  // 410 with Location (only with PagerOptions::follow_resync): items not reported
  // by the end of this round are gone.
  bool resynced = false;
};

struct PagerOptions {
  // On 410 + Location, restart from that URL instead of throwing (the page says
  // resynced). Without Location, or when false, is_invalid_delta errors propagate.
  bool follow_resync = false;
  int max_resyncs = 2;
};

class DeltaPager {
 public:
  // `start`: the first URL of a round ("/users/{id}/mailFolders/{f}/messages/delta?$select=..."),
  // a saved nextLink or a saved deltaLink. `opts` go with every page (mailbox key,
  // page size); expect_json is forced on.
  DeltaPager(GraphClient& client, std::string start, RequestOptions opts = {}, PagerOptions popts = {});

  // The next page, or nullopt once the page carrying the deltaLink (or a last page
  // without any link, for plain collections) was returned. Throws GraphError
  // (is_invalid_delta: discard the cursor and re-enumerate), TokenError, Error.
  boost::asio::awaitable<std::optional<Page>> next();

  // The link the next call will fetch ("" once done).
  const std::string& cursor() const { return link_; }
  bool done() const { return done_; }
  int pages() const { return pages_; }

 private:
  GraphClient& client_;
  std::string link_;
  RequestOptions opts_;
  PagerOptions popts_;
  bool done_ = false;
  bool resynced_ = false;
  int resyncs_ = 0;
  int pages_ = 0;
};

// Delta helpers for items of a page.
bool is_removed(const nlohmann::json& item);        // carries "@removed"
std::string removed_reason(const nlohmann::json& item);  // "deleted", "changed" or ""

}  // namespace m365vault::graph
