#pragma once
// Shared by the [graph] tests: a GraphClient pointed at the emulator, and running
// a coroutine to completion on a test io_context.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <thread>
#include <vector>

#include "emulator_support.hpp"
#include "m365vault/graph/client.hpp"

namespace m365vault::test {

inline graph::TenantEndpoint emulator_endpoint(const EmulatorProcess& emu, const TestTenant& t) {
  graph::TenantEndpoint ep;
  ep.tenant_id = t.tenant;
  ep.client_id = t.client;
  ep.client_secret = t.secret;
  ep.graph_url = ep.login_url = emu.base();
  ep.ca_file = emu.ca();
  return ep;
}

template <class T>
T run_on(boost::asio::io_context& ioc, boost::asio::awaitable<T> op, int threads = 1) {
  auto f = boost::asio::co_spawn(ioc, std::move(op), boost::asio::use_future);
  ioc.restart();
  std::vector<std::thread> more;
  for (int i = 1; i < threads; ++i) more.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : more) t.join();
  return f.get();
}

}  // namespace m365vault::test
