// Exit codes and the one-line error report used by every tool's main().
#include "coco/common/error.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <string>

namespace coco {

int exit_code(const std::exception& e) {
  if (dynamic_cast<const ConfigError*>(&e)) return kExitConfig;
  if (dynamic_cast<const DataError*>(&e)) return kExitData;
  if (dynamic_cast<const CheckpointError*>(&e)) return kExitCheckpoint;
  if (dynamic_cast<const ModelError*>(&e)) return kExitModel;
  if (dynamic_cast<const Interrupted*>(&e)) return kExitInterrupted;
  return kExitRuntime;
}

void print_error_line(const char* tool, const std::exception& e) {
  std::string msg = e.what();
  // libtorch errors carry a multi-line C++ backtrace; the user needs the first line.
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) msg = c10->what_without_backtrace();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  std::fprintf(stderr, "%s: error: %s\n", tool, msg.c_str());
  std::fflush(stderr);
}

}  // namespace coco
