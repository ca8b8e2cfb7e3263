# Sanitizer builds, in the manner of libuv's CMakeLists: the flags go on
# every target (compile and link), so libraries and tests agree.
if(CHORUS_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(CHORUS_SANITIZED=1)
elseif(CHORUS_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  add_compile_definitions(CHORUS_SANITIZED=1)
elseif(NOT CHORUS_SANITIZE STREQUAL "")
  message(FATAL_ERROR "CHORUS_SANITIZE must be '', 'address' or 'thread'")
endif()
