#pragma once
// Bounded concurrency for coroutines (mail fetchers per folder, owners per run,
// downloads per drive, items of a restore).
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <functional>

namespace m365vault::backup {

// Runs fn(0..count-1) with at most n at once on the caller's executor (a strand:
// the bodies interleave, never run in parallel). The first exception is rethrown
// once every started body has ended; bodies not started by then never start.
boost::asio::awaitable<void> for_each_concurrent(std::size_t n, std::size_t count,
                                                 std::function<boost::asio::awaitable<void>(std::size_t)> fn);

}  // namespace m365vault::backup
