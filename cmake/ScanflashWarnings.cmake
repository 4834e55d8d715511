# Compiler flags shared by every scanflash target.
set(SCANFLASH_C_WARNINGS -Wall -Wextra -Wshadow -Wno-unused-parameter)

set(SCANFLASH_SANITIZE_FLAGS "")
if(SCANFLASH_SANITIZE)
  set(SCANFLASH_SANITIZE_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
                               -fno-sanitize-recover=undefined)
endif()

# scanflash_target(<target>): warnings, sanitizers and the repo include root.
function(scanflash_target tgt)
  get_target_property(_type ${tgt} TYPE)
  set(_scope PRIVATE)
  if(_type STREQUAL "INTERFACE_LIBRARY")
    return()
  endif()
  # POSIX/GNU interfaces (getopt_long, strdup, clock_gettime) on top of C11.
  target_compile_definitions(${tgt} ${_scope} _GNU_SOURCE)
  target_compile_options(${tgt} ${_scope}
    $<$<COMPILE_LANGUAGE:C>:${SCANFLASH_C_WARNINGS}>
    $<$<COMPILE_LANGUAGE:C>:${SCANFLASH_SANITIZE_FLAGS}>)
  if(SCANFLASH_SANITIZE)
    target_link_options(${tgt} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()
