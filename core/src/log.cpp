#include "m365vault/core/log.hpp"

#include <spdlog/details/fmt_helper.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>

namespace m365vault {

struct LoggingState {
  std::mutex mu;
  spdlog::level::level_enum level;
  std::map<std::string, std::shared_ptr<spdlog::logger>> loggers;
};

namespace {

// One JSON object per line: {"ts":"…","level":"info","module":"api","msg":"…"}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = system_clock::to_time_t(msg.time);
    auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[96];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    std::string line = "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    auto lv = spdlog::level::to_string_view(msg.level);
    line.append(lv.data(), lv.size());
    line += "\",\"module\":\"";
    line += json_escape(std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    line += "\",\"msg\":\"";
    line += json_escape(std::string_view(msg.payload.data(), msg.payload.size()));
    line += "\"}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat f) {
  if (f == LogFormat::json) return std::make_unique<JsonFormatter>();
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %l [%n] %v",
                                                     spdlog::pattern_time_type::utc);
}

}  // namespace

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view s) {
  static const std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  for (auto& [name, lv] : kLevels)
    if (name == s) return lv;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view s) {
  if (s == "text") return LogFormat::text;
  if (s == "json") return LogFormat::json;
  return std::nullopt;
}

Logging::Logging(LogFormat format, spdlog::level::level_enum level)
    : Logging(std::make_shared<spdlog::sinks::stderr_sink_mt>(), format, level) {}

Logging::Logging(spdlog::sink_ptr sink, LogFormat format, spdlog::level::level_enum level)
    : sink_(std::move(sink)), state_(std::make_shared<LoggingState>()) {
  sink_->set_formatter(make_formatter(format));
  sink_->set_level(spdlog::level::trace);
  state_->level = level;
}

std::shared_ptr<spdlog::logger> Logging::get(const std::string& module) {
  std::lock_guard lk(state_->mu);
  auto& l = state_->loggers[module];
  if (!l) {
    l = std::make_shared<spdlog::logger>(module, sink_);
    l->set_level(state_->level);
    l->flush_on(spdlog::level::trace);
  }
  return l;
}

void Logging::set_level(spdlog::level::level_enum level) {
  std::lock_guard lk(state_->mu);
  state_->level = level;
  for (auto& [_, l] : state_->loggers) l->set_level(level);
}

spdlog::level::level_enum Logging::level() const {
  std::lock_guard lk(state_->mu);
  return state_->level;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace m365vault
