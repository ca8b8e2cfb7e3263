# One INTERFACE target carries the project's warning flags; every target
# of ours links it. CHORUS_WERROR turns them into errors (CI does).
add_library(chorus_warnings INTERFACE)
target_compile_options(chorus_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-align -Wstrict-prototypes
  -Wmissing-prototypes -Wwrite-strings -Wformat=2 -Wundef -Wvla
  -Wno-unused-parameter)
if(CHORUS_WERROR)
  target_compile_options(chorus_warnings INTERFACE -Werror)
endif()
# Every translation unit sees the same feature macros.
target_compile_definitions(chorus_warnings INTERFACE _GNU_SOURCE)
