# Warnings for the project's own code: strict, and errors in CI (COCO_WERROR).
option(COCO_WERROR "Treat warnings in the project's own code as errors" OFF)

function(coco_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wnon-virtual-dtor -Wno-unused-parameter)
  if(COCO_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
