// Typed exceptions for everything the library reports to a user.
// Library code throws these and never exits; only a tool's main() catches them, prints
// what() as one line and returns the exit code of the category (see exit_code()).
#pragma once

#include <stdexcept>
#include <string>

namespace coco {

/// Base of all CoCo errors: what() is one complete line naming the file and the place.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad configuration: what() starts with "config error at /json/path: ...".
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Malformed data file (sequences, items, RecBole atomic files, raw dumps).
class DataError : public Error {
 public:
  using Error::Error;
};

/// Unreadable, truncated or mismatching checkpoint.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

/// Malformed or unsupported model file (GGUF, safetensors, tokenizer).
class ModelError : public Error {
 public:
  using Error::Error;
};

/// Training stopped by the user (Ctrl-C) after a checkpoint was written.
class Interrupted : public Error {
 public:
  using Error::Error;
};

/// Documented exit codes of the tools.
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 2,       // bad command line
  kExitConfig = 3,      // bad config
  kExitData = 4,        // bad data file
  kExitCheckpoint = 5,  // bad checkpoint
  kExitModel = 6,       // bad model file
  kExitRuntime = 7,     // anything else (out of memory, libtorch error, ...)
  kExitInterrupted = 130,
};

/// Exit code for an exception caught in main().
int exit_code(const std::exception& e);

/// Runs body() and turns any exception into one line on stderr ("<tool>: error: <what>")
/// and the documented exit code. Tools wrap their whole main() in it; it also applies the
/// process-wide settings of coco/common/runtime.h.
template <typename Body>
int run_tool(const char* tool, Body&& body);

}  // namespace coco

#include "coco/common/error_inl.h"
