#include "m365vault/graph/pager.hpp"

namespace m365vault::graph {

DeltaPager::DeltaPager(GraphClient& client, std::string start, RequestOptions opts, PagerOptions popts)
    : client_(client), link_(std::move(start)), opts_(std::move(opts)), popts_(popts) {
  opts_.expect_json = true;
}

boost::asio::awaitable<std::optional<Page>> DeltaPager::next() {
  if (done_) co_return std::nullopt;
  GraphResponse res;
  for (;;) {
    std::optional<std::string> restart;
    try {
      res = co_await client_.get(link_, opts_);
      break;
    } catch (const GraphError& e) {
      // 410 Gone + Location: the service wants a full round from that URL.
      if (!popts_.follow_resync || e.status() != 410 || e.location().empty() || resyncs_ >= popts_.max_resyncs) throw;
      restart = e.location();
    }
    link_ = client_.resolve(*restart);
    ++resyncs_;
    resynced_ = true;
  }
  const auto& j = res.json;
  if (!j.is_object() || !j.contains("value") || !j["value"].is_array())
    throw Error(Errc::bad_request, "collection page (request-id '" + res.request_id() + "'): no \"value\" array");
  Page page;
  page.items.reserve(j["value"].size());
  for (const auto& v : j["value"]) page.items.push_back(v);
  auto link = [&](const char* k) -> std::optional<std::string> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) return std::nullopt;
    return it->get<std::string>();
  };
  page.next_link = link("@odata.nextLink");
  page.delta_link = link("@odata.deltaLink");
  page.resynced = resynced_;
  ++pages_;
  if (page.next_link) {
    // A page holds one link at most; if a service ever sent both, the round is
    // not over until the nextLinks are.
    page.delta_link.reset();
    link_ = *page.next_link;
  } else {
    done_ = true;
    link_.clear();
  }
  co_return page;
}

bool is_removed(const nlohmann::json& item) { return item.is_object() && item.contains("@removed"); }

std::string removed_reason(const nlohmann::json& item) {
  if (!is_removed(item)) return {};
  const auto& r = item["@removed"];
  if (r.is_object() && r.contains("reason") && r["reason"].is_string()) return r["reason"].get<std::string>();
  return {};
}

}  // namespace m365vault::graph
