# Strict warnings for our own code only (third-party headers are included as system headers).
add_library(m365vault_options INTERFACE)
target_compile_options(m365vault_options INTERFACE -Wall -Wextra -Werror)
# GCC 12 reports a false -Wmismatched-new-delete on Asio coroutine frames with many
# co_return paths (awaitable_frame_base pairs its own operator new and delete);
# GCC 13 no longer does. Off for every target rather than one by one.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(m365vault_options INTERFACE -Wno-mismatched-new-delete)
endif()
if(M365VAULT_SANITIZE)
  target_compile_options(m365vault_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(m365vault_options INTERFACE -fsanitize=address,undefined)
endif()

# m365vault_library(NAME SOURCES...) declares the one library of a top-level folder,
# with its public headers under include/m365vault/<folder>/.
function(m365vault_library name)
  add_library(${name} STATIC ${ARGN})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(${name} PRIVATE m365vault_options)
endfunction()
