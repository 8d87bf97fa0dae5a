// Implementation of coco::run_tool (a template, hence in a header).
#pragma once

#include <cstdio>
#include <exception>

#include "coco/common/runtime.h"

namespace coco {

void print_error_line(const char* tool, const std::exception& e);

template <typename Body>
int run_tool(const char* tool, Body&& body) {
  tune_allocator();
  try {
    return body();
  } catch (const std::exception& e) {
    print_error_line(tool, e);
    return exit_code(e);
  }
}

}  // namespace coco
