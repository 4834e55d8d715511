# Run at build time (not only at configure time) so the sha follows commits.
execute_process(COMMAND git -C "${SRC}" rev-parse HEAD OUTPUT_VARIABLE SCANFLASH_GIT_SHA
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR SCANFLASH_GIT_SHA STREQUAL "")
  set(SCANFLASH_GIT_SHA "unknown")
else()
  execute_process(COMMAND git -C "${SRC}" status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE _dirty OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT _dirty STREQUAL "")
    string(APPEND SCANFLASH_GIT_SHA "+dirty")
  endif()
endif()
configure_file("${IN}" "${OUT}.tmp" @ONLY)
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
