#pragma once
// A logger for code under test that takes one: it drops every line.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace m365vault::test {

// A fresh logger of this name with a sink that discards (thread-safe, like the daemon's).
inline std::shared_ptr<spdlog::logger> quiet_logger(const std::string& name = "test") {
  return std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace m365vault::test
