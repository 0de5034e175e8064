# Storage tests (object stores, SigV4, repository format). Included from
# tests/CMakeLists.txt after m365vault_test() is defined.
add_library(m365vault_storage_test_support STATIC
  ${CMAKE_CURRENT_LIST_DIR}/support/storage/object_store_contract.cpp
  ${CMAKE_CURRENT_LIST_DIR}/support/storage/blob_index_contract.cpp)
target_link_libraries(m365vault_storage_test_support
  PUBLIC m365vault_test_support m365vault_storage PRIVATE m365vault_options)

m365vault_test(storage_unit_tests unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/unit/storage/object_store_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/unit/storage/fs_store_faults_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/unit/storage/sigv4_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/unit/storage/s3_store_faults_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/unit/storage/repository_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/unit/storage/s3_store_tls_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/unit/storage/blob_index_test.cpp
  LIBS m365vault_storage m365vault_storage_test_support)

# Needs the S3 server: scripts/s3-server.sh start DIR prints its address, which the
# test command exports as M365VAULT_TEST_S3_ENDPOINT (and _ACCESS_KEY, _SECRET_KEY,
# _REGION; optional _BUCKET, default m365vault-test).
m365vault_test(storage_s3_tests s3
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/integration/storage/s3_store_s3test.cpp
  LIBS m365vault_storage m365vault_storage_test_support)

# The SIGKILL crash test drives this helper.
add_executable(storage_crash_writer ${CMAKE_CURRENT_LIST_DIR}/unit/storage/crash_writer.cpp)
target_link_libraries(storage_crash_writer PRIVATE m365vault_storage m365vault_options)
target_include_directories(storage_crash_writer PRIVATE ${CMAKE_CURRENT_LIST_DIR})
m365vault_test(storage_crash_tests unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/storage/crash_test.cpp
  LIBS m365vault_storage)
target_compile_definitions(storage_crash_tests PRIVATE
  M365VAULT_CRASH_WRITER="$<TARGET_FILE:storage_crash_writer>")
add_dependencies(storage_crash_tests storage_crash_writer)

# Needs the test PostgreSQL (M365VAULT_TEST_PG_URL): the blob index, prune, verify,
# rebuild, faults at every call N and the SIGKILL test on FsStore + PgBlobIndex.
m365vault_test(storage_pg_tests pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/storage/pg_index_pgtest.cpp
  LIBS m365vault_storage m365vault_storage_test_support)
target_compile_definitions(storage_pg_tests PRIVATE
  M365VAULT_CRASH_WRITER="$<TARGET_FILE:storage_crash_writer>")
add_dependencies(storage_pg_tests storage_crash_writer)
