#pragma once
// What the per-owner passes outside backup.cpp share (SharePoint lists, Teams
// channels): the next delta page or "the saved state expired", one owner's
// snapshot with its commits (content durable first, then the faults, then the
// pages in order, each with its cursor), events, and small JSON readers.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "drive.hpp"
#include "m365vault/graph/pager.hpp"
#include "m365vault/storage/catalog.hpp"

namespace m365vault::backup {

// A delta's next page, or nullopt with `expired` set to Graph's code when the
// saved delta state is no longer valid (410, syncStateNotFound, resyncRequired...):
// the caller starts the enumeration over. `restarts` counts those answers for one
// scope; past a few in a row the service is not settling and the error stands.
// Everything else is rethrown.
boost::asio::awaitable<std::optional<graph::Page>> next_page(graph::DeltaPager& pager, std::string& expired,
                                                             int& restarts);

// Every item of every page of a plain collection.
boost::asio::awaitable<std::vector<nlohmann::json>> list_all(graph::GraphClient& client, const std::string& url,
                                                             graph::RequestOptions opts = {});

// j[key] when it is a string, else "".
std::string json_str(const nlohmann::json& j, const char* key);

// Text of an HTML body for search: tags dropped, entities &amp; &lt; &gt; &quot;
// &#39; &nbsp; decoded, white space collapsed, at most `max` bytes (cut on a UTF-8
// boundary).
std::string html_text(const std::string& html, std::size_t max);

// One (owner, category) pass: its snapshot, commits and events.
class OwnerPass {
 public:
  using Faults = std::vector<std::pair<std::string, std::string>>;  // item graph id, reason

  OwnerPass(DriveEnv& env, storage::Owner owner, storage::Category cat, std::string who)
      : env_(env), owner_(std::move(owner)), cat_(cat), who_(std::move(who)) {}

  // Begins (or, in a resumed run, continues) the snapshot.
  boost::asio::awaitable<void> begin();
  // Ends the snapshot: partial when items faulted.
  boost::asio::awaitable<void> finish();

  boost::asio::awaitable<void> event(const char* level, const std::string& message);
  // Flushes the repository when a page carries content, records the faults, then
  // commits the pages in order. Clears both.
  boost::asio::awaitable<void> commit(std::vector<storage::PageCommit>& pages, Faults& faults);
  // Pages waiting for their commit, with the faults of their items.
  struct Pending {
    std::vector<storage::PageCommit> pages;
    Faults faults;
    std::size_t bytes = 0;  // content in the pages
    std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  };
  // Queues `pc` (moved from); commits what is queued when `end` (a round's last
  // page), or once commit_bytes of content or commit_interval have gathered.
  boost::asio::awaitable<void> queue(Pending& p, storage::PageCommit& pc, bool end);
  // Commits what is queued.
  boost::asio::awaitable<void> commit(Pending& p);
  // The saved delta of `container` is no longer valid: commits what is queued,
  // records `why` as a warning event and starts a resync round on the container's
  // items (what the completed round does not report then closes). The caller
  // starts its enumeration over.
  boost::asio::awaitable<void> restart_round(Pending& p, const std::string& container, const std::string& why);
  // A page of this pass's owner and category, in its snapshot.
  storage::PageCommit new_page(std::optional<std::string> container) const;
  // Stores bytes as one item's content (queued in the repository; durable at the next commit).
  boost::asio::awaitable<void> store(storage::ItemChange& ch, const std::string& bytes);

  // The containers a listing reports (channels, lists), each with an item of kind
  // `info_kind` inside it holding the container's own Graph JSON (its lossless
  // metadata: a channel's membershipType, a list's columns and template). Open
  // containers the listing no longer reports are closed with their items. One
  // commit on the owner's scope, whose cursor only records that the listing ran.
  boost::asio::awaitable<void> sync_listed(const std::vector<nlohmann::json>& listed, const char* info_kind);
  // A listed container's name: displayName, name or topic, else the owner's name.
  std::string listed_name(const nlohmann::json& listed) const;

  // Items that faulted in earlier runs: the delta does not report them again until
  // they change, so each is read again through `retry(fault graph id, page)`, which
  // fills a page of its container (or returns false: the item is gone, the fault is
  // resolved). The page leaves the container's cursor where it is. Containers not
  // walked yet (no cursor: their first round will meet the item) are left for later.
  using Retry = std::function<boost::asio::awaitable<bool>(const std::string& gid, storage::PageCommit& pc,
                                                             Faults& faults)>;
  boost::asio::awaitable<void> retry_faults(const Retry& retry);

  template <class F>
  auto db(F f) -> boost::asio::awaitable<std::invoke_result_t<F, storage::PgConnection&>> {
    co_return co_await env_.svc.db.run(std::move(f));
  }

  DriveEnv& env() { return env_; }
  const storage::Owner& owner() const { return owner_; }
  storage::Category category() const { return cat_; }
  const std::string& who() const { return who_; }
  const storage::Catalog& catalog() const { return catalog_; }
  long long faults() const { return faults_; }

 private:
  DriveEnv& env_;
  storage::Owner owner_;
  storage::Category cat_;
  std::string who_;
  std::string snapshot_;
  storage::Catalog catalog_;
  long long faults_ = 0;
};

}  // namespace m365vault::backup
