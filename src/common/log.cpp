// The shared stderr logger.
#include "coco/common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "coco/common/error.h"

namespace coco {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("coco");
    l->set_pattern("%H:%M:%S %^%l%$ %v");
    return l;
  }();
  return *logger;
}

void set_log_level(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw ConfigError("unknown log level '" + level +
                      "' (expected trace, debug, info, warn, error or off)");
  }
  log().set_level(lvl);
}

}  // namespace coco
