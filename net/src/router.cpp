#include "m365vault/net/router.hpp"

namespace m365vault::net {

namespace {
std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    if (p[i] == '/') {
      ++i;
      continue;
    }
    auto j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    out.push_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}
}  // namespace

void Router::add(std::string method, std::string path_template, Handler handler) {
  Route r{std::move(method), std::move(path_template), {}, std::move(handler)};
  for (auto s : split_path(r.path_template)) r.segments.emplace_back(s);
  routes_.push_back(std::move(r));
}

boost::asio::awaitable<Response> Router::dispatch(Request& req) const {
  // Split the path as sent, then decode each segment: an encoded '/' (%2F) stays
  // inside its segment instead of becoming a separator.
  std::string_view raw = req.target.empty() ? std::string_view(req.path) : std::string_view(req.target);
  raw = raw.substr(0, raw.find('?'));
  std::vector<std::string> decoded;
  for (auto s : split_path(raw)) {
    auto d = percent_decode(s);
    if (!d) co_return Response::problem(Errc::bad_request, "request target is not a valid path", req.request_id);
    decoded.push_back(std::move(*d));
  }
  std::vector<std::string_view> segs(decoded.begin(), decoded.end());
  std::string allow;
  for (auto& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const auto& t = r.segments[i];
      if (t.size() > 2 && t.front() == '{' && t.back() == '}') params[t.substr(1, t.size() - 2)] = segs[i];
      else ok = t == segs[i];
    }
    if (!ok) continue;
    if (r.method != req.method && !(r.method == "GET" && req.method == "HEAD")) {
      if (allow.find(r.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + r.method;
      continue;
    }
    req.route = r.path_template;
    req.params = std::move(params);
    co_return co_await r.handler(req);
  }
  if (!allow.empty()) {
    req.route = "unmatched";
    auto res = Response::problem(Errc::method_not_allowed,
                                 "method '" + req.method + "' is not allowed on '" + req.path + "'", req.request_id);
    res.headers.set("Allow", allow);
    co_return res;
  }
  req.route = "unmatched";
  co_return Response::problem(Errc::not_found, "no route for '" + req.path + "'", req.request_id);
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& r : routes_) out.emplace_back(r.method, r.path_template);
  return out;
}

Handler Router::handler() const {
  return [this](Request& req) { return dispatch(req); };
}

}  // namespace m365vault::net
