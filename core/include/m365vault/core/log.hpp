#pragma once
// Logging: one spdlog logger per module, all writing to one shared sink whose
// format (text or JSON lines) and level the daemon sets. Loggers are handed to the
// classes that use them; nothing reaches for a global logger.
#include <spdlog/logger.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace m365vault {

enum class LogFormat { text, json };

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view s);
std::optional<LogFormat> parse_log_format(std::string_view s);

// Owns the sink behind every module logger. Thread-safe.
class Logging {
 public:
  // Writes to stderr (journald picks it up under systemd).
  Logging(LogFormat format, spdlog::level::level_enum level);
  // Writes to a caller-provided sink (tests).
  Logging(spdlog::sink_ptr sink, LogFormat format, spdlog::level::level_enum level);

  // The logger of a module ("api", "db", ...), created on first use.
  std::shared_ptr<spdlog::logger> get(const std::string& module);
  // Changes the level of every logger, present and future (SIGHUP).
  void set_level(spdlog::level::level_enum level);
  spdlog::level::level_enum level() const;

 private:
  spdlog::sink_ptr sink_;
  std::shared_ptr<struct LoggingState> state_;
};

// Escapes s as the contents of a JSON string (no surrounding quotes).
std::string json_escape(std::string_view s);

}  // namespace m365vault
