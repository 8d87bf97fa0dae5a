// The project's one spdlog logger. Messages are tagged by area: "[data]", "[train]",
// "[eval]", "[llm]". Logs go to stderr; stdout is reserved for reports the user asked for.
#pragma once

#include <spdlog/spdlog.h>

namespace coco {

/// The shared logger ("coco"), created on first use, writing to stderr.
spdlog::logger& log();

/// Sets the level from a name: trace, debug, info, warn, error, off.
void set_log_level(const std::string& level);

}  // namespace coco
