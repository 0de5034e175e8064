#pragma once
// Maps (method, path template) to handlers. Templates are literal segments and
// "{name}" segments that match one non-empty path segment. Unknown paths answer
// 404 and known paths with another method 405 (with Allow), as problem+json.
#include <memory>
#include <string>
#include <vector>

#include "m365vault/net/http.hpp"

namespace m365vault::net {

class Router {
 public:
  void add(std::string method, std::string path_template, Handler handler);
  // Dispatches; sets req.route and req.params. Never throws for an unmatched path.
  boost::asio::awaitable<Response> dispatch(Request& req) const;
  // A Handler that dispatches through this router (which must outlive it).
  Handler handler() const;
  // Every (method, template) registered, in registration order.
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  struct Route {
    std::string method;
    std::string path_template;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace m365vault::net
