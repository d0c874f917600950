# VeilBackend.cmake: picks the enclave backend and provides the functions that
# build enclave images and host bridges for it.
#
#   VEIL_ENCLAVE (cache): auto | openenclave | virtual
#   Sets VEIL_BACKEND (openenclave | virtual) and VEIL_TRUSTED_LIBS (what
#   enclave-side static libraries link).
#
#   veil_add_enclave(<target> EDL <edl> CONF <conf> SOURCES <src>...
#                    [LIBRARIES <lib>...] [SEARCH_PATHS <dir>...] [KEY <pem>])
#   veil_add_host_bridge(<target> EDL <edl> [SEARCH_PATHS <dir>...]
#                        [RUNTIME_FROM <shared host library target>])
#   veil_enclave_image(<target> <out_var>)
#   veil_add_symbol_check(<enclave target>)
#
# Both backends generate the bridge from the same EDL with the same file names
# and prototypes: oeedger8r with the SDK, runtime/edger/veil_edger.py without.
# An EDL may import another (from "x.edl" import ...;) found in SEARCH_PATHS; the
# bridge is regenerated when any EDL there changes.

get_filename_component(VEIL_RUNTIME_DIR "${CMAKE_CURRENT_LIST_DIR}/../runtime" ABSOLUTE)
set(VEIL_RUNTIME_INCLUDE_DIR "${VEIL_RUNTIME_DIR}/include")
set(VEIL_EDGER "${VEIL_RUNTIME_DIR}/edger/veil_edger.py")
set(VEIL_CONF_COMPILER "${VEIL_RUNTIME_DIR}/edger/veil_conf.py")
set(VEIL_EDGER_SOURCES
  "${VEIL_RUNTIME_DIR}/edger/veil_edger.py"
  "${VEIL_RUNTIME_DIR}/edger/edl_parse.py"
  "${VEIL_RUNTIME_DIR}/edger/edl_emit.py")
get_filename_component(VEIL_SYMBOL_CHECKER
  "${CMAKE_CURRENT_LIST_DIR}/../tests/cpp/runtime/check_enclave_symbols.py" ABSOLUTE)

if(NOT VEIL_ENCLAVE MATCHES "^(auto|openenclave|virtual)$")
  message(FATAL_ERROR "VEIL_ENCLAVE must be auto, openenclave or virtual (got '${VEIL_ENCLAVE}')")
endif()

if(VEIL_ENCLAVE STREQUAL "virtual")
  set(VEIL_BACKEND virtual)
else()
  find_package(OpenEnclave CONFIG QUIET)
  if(OpenEnclave_FOUND)
    set(VEIL_BACKEND openenclave)
  elseif(VEIL_ENCLAVE STREQUAL "openenclave")
    message(FATAL_ERROR
      "VEIL_ENCLAVE=openenclave but the Open Enclave SDK was not found. Install the SDK "
      "and point CMake at it (-DOpenEnclave_DIR=<prefix>/lib/openenclave/cmake, or source "
      "<prefix>/share/openenclave/openenclaverc), or build with -DVEIL_ENCLAVE=virtual.")
  else()
    set(VEIL_BACKEND virtual)
  endif()
endif()

if(VEIL_BACKEND STREQUAL "openenclave")
  set(VEIL_TRUSTED_LIBS openenclave::oeenclave openenclave::oecryptoopenssl openenclave::oelibcxx)
else()
  set(VEIL_TRUSTED_LIBS OpenSSL::Crypto)
endif()

# include() shares the caller's scope; PARENT_SCOPE covers a caller that wraps
# this file in a function or a subdirectory.
get_directory_property(_veil_has_parent PARENT_DIRECTORY)
if(_veil_has_parent)
  set(VEIL_BACKEND ${VEIL_BACKEND} PARENT_SCOPE)
  set(VEIL_TRUSTED_LIBS ${VEIL_TRUSTED_LIBS} PARENT_SCOPE)
endif()

# -- helpers -------------------------------------------------------------------

# The compile definition naming the backend, for targets the functions create.
function(_veil_backend_definition out_var)
  if(VEIL_BACKEND STREQUAL "openenclave")
    set(${out_var} VEIL_BACKEND_OPENENCLAVE=1 PARENT_SCOPE)
  else()
    set(${out_var} VEIL_BACKEND_VIRTUAL=1 PARENT_SCOPE)
  endif()
endfunction()

function(_veil_edl_name edl out_var)
  get_filename_component(_name "${edl}" NAME_WE)
  set(${out_var} ${_name} PARENT_SCOPE)
endfunction()

function(_veil_absolute path out_var)
  get_filename_component(_abs "${path}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(${out_var} "${_abs}" PARENT_SCOPE)
endfunction()

# Custom command generating one side of the bridge into <dir>.
#   side: trusted | untrusted
function(_veil_generate_bridge side edl dir search_paths out_sources out_headers)
  _veil_edl_name("${edl}" _name)
  if(side STREQUAL "trusted")
    set(_letter t)
  else()
    set(_letter u)
  endif()
  set(_c "${dir}/${_name}_${_letter}.c")
  set(_h "${dir}/${_name}_${_letter}.h" "${dir}/${_name}_args.h")
  set(_search_args)
  set(_importable)
  foreach(_p IN LISTS search_paths)
    list(APPEND _search_args --search-path "${_p}")
    file(GLOB _edls CONFIGURE_DEPENDS "${_p}/*.edl")
    list(APPEND _importable ${_edls})
  endforeach()
  if(VEIL_BACKEND STREQUAL "openenclave")
    list(APPEND _search_args --search-path "${OE_INCLUDEDIR}"
                             --search-path "${OE_INCLUDEDIR}/openenclave/edl/sgx")
    set(_tool openenclave::oeedger8r)
    set(_tool_deps openenclave::oeedger8r)
  else()
    set(_tool "${Python3_EXECUTABLE}" "${VEIL_EDGER}")
    set(_tool_deps ${VEIL_EDGER_SOURCES})
  endif()
  add_custom_command(
    OUTPUT ${_c} ${_h}
    COMMAND ${CMAKE_COMMAND} -E make_directory "${dir}"
    COMMAND ${_tool} "${edl}" ${_search_args} --${side} --${side}-dir "${dir}"
    DEPENDS "${edl}" ${_importable} ${_tool_deps}
    COMMENT "Generating the ${side} bridge of ${_name}.edl"
    VERBATIM)
  set(${out_sources} ${_c} PARENT_SCOPE)
  set(${out_headers} ${_h} PARENT_SCOPE)
endfunction()

# -- veil_add_enclave ---------------------------------------------------------------

function(veil_add_enclave target)
  cmake_parse_arguments(ARG "" "EDL;CONF;KEY" "SOURCES;LIBRARIES;SEARCH_PATHS" ${ARGN})
  if(NOT ARG_EDL OR NOT ARG_CONF OR NOT ARG_SOURCES)
    message(FATAL_ERROR "veil_add_enclave(${target}): EDL, CONF and SOURCES are required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "veil_add_enclave(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  _veil_absolute("${ARG_EDL}" _edl)
  _veil_absolute("${ARG_CONF}" _conf)
  _veil_backend_definition(_veil_backend_define)
  set(_dir "${CMAKE_CURRENT_BINARY_DIR}/${target}_edl")
  _veil_generate_bridge(trusted "${_edl}" "${_dir}" "${ARG_SEARCH_PATHS}" _bridge_c _bridge_h)

  # Whether veil's image is a debug enclave is the build's choice (VEIL_ENCLAVE_DEBUG,
  # off by default), so its .conf states no Debug; a test image's .conf may.
  file(READ "${_conf}" _conf_text)
  if(NOT _conf_text MATCHES "(^|\n)[ \t]*Debug[ \t]*=")
    if(VEIL_ENCLAVE_DEBUG)
      string(APPEND _conf_text "\nDebug=1\n")
    else()
      string(APPEND _conf_text "\nDebug=0\n")
    endif()
  endif()
  set(_effective_conf "${CMAKE_CURRENT_BINARY_DIR}/${target}.effective.conf")
  file(CONFIGURE OUTPUT "${_effective_conf}" CONTENT "${_conf_text}" @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_conf}")

  if(VEIL_BACKEND STREQUAL "openenclave")
    add_executable(${target} ${ARG_SOURCES} ${_bridge_c} ${_bridge_h})
    set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
    target_include_directories(${target} PRIVATE "${_dir}")
    target_compile_definitions(${target} PRIVATE ${_veil_backend_define})
    target_link_libraries(${target} PRIVATE ${ARG_LIBRARIES} ${VEIL_TRUSTED_LIBS})

    if(ARG_KEY)
      _veil_absolute("${ARG_KEY}" _key)
    else()
      # A development key, generated once per build tree. Production images are
      # signed with the project's own key (KEY argument).
      set(_key "${CMAKE_CURRENT_BINARY_DIR}/${target}-dev-private.pem")
      find_program(VEIL_OPENSSL_EXECUTABLE openssl REQUIRED)
      add_custom_command(
        OUTPUT "${_key}"
        COMMAND "${VEIL_OPENSSL_EXECUTABLE}" genrsa -out "${_key}" -3 3072
        COMMENT "Generating a development signing key for ${target}"
        VERBATIM)
    endif()
    set(_signed "${CMAKE_CURRENT_BINARY_DIR}/${target}.signed")
    add_custom_command(
      OUTPUT "${_signed}"
      COMMAND openenclave::oesign sign -e $<TARGET_FILE:${target}> -c "${_effective_conf}" -k "${_key}"
      DEPENDS ${target} "${_effective_conf}" "${_key}" openenclave::oesign
      COMMENT "Signing ${target}"
      VERBATIM)
    add_custom_target(${target}_signed ALL DEPENDS "${_signed}")
    set_target_properties(${target} PROPERTIES VEIL_SIGNED_IMAGE "${_signed}")
    return()
  endif()

  # Virtual backend: the image is a shared object loaded RTLD_LOCAL behind one
  # entry point. Hidden visibility plus a version script export nothing else, and
  # --no-undefined makes every symbol resolve from the image's own dependencies
  # (libc, libm, libstdc++, libcrypto), never only from the host process.
  set(_conf_c "${_dir}/${target}_conf.c")
  add_custom_command(
    OUTPUT "${_conf_c}"
    COMMAND "${Python3_EXECUTABLE}" "${VEIL_CONF_COMPILER}" "${_effective_conf}" "${_conf_c}"
    DEPENDS "${_effective_conf}" "${VEIL_CONF_COMPILER}"
    COMMENT "Compiling ${target}'s enclave configuration"
    VERBATIM)
  add_library(${target} MODULE ${ARG_SOURCES} ${_bridge_c} ${_bridge_h} "${_conf_c}")
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${VEIL_RUNTIME_DIR}/src/venclave.map")
  target_include_directories(${target} PRIVATE "${_dir}" "${VEIL_RUNTIME_INCLUDE_DIR}")
  target_compile_definitions(${target} PRIVATE ${_veil_backend_define})
  target_link_libraries(${target} PRIVATE ${ARG_LIBRARIES} veil_vtrusted ${VEIL_TRUSTED_LIBS})
  target_link_options(${target} PRIVATE
    "LINKER:--no-undefined"
    "LINKER:-z,now"
    "LINKER:--undefined=veil_venclave_entry"
    "LINKER:--version-script=${VEIL_RUNTIME_DIR}/src/venclave.map")
endfunction()

# -- veil_add_host_bridge ---------------------------------------------------------

function(veil_add_host_bridge target)
  cmake_parse_arguments(ARG "" "EDL;RUNTIME_FROM" "SEARCH_PATHS" ${ARGN})
  if(NOT ARG_EDL)
    message(FATAL_ERROR "veil_add_host_bridge(${target}): EDL is required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "veil_add_host_bridge(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  _veil_absolute("${ARG_EDL}" _edl)
  _veil_backend_definition(_veil_backend_define)
  set(_dir "${CMAKE_CURRENT_BINARY_DIR}/${target}_edl_u")
  _veil_generate_bridge(untrusted "${_edl}" "${_dir}" "${ARG_SEARCH_PATHS}" _bridge_c _bridge_h)
  target_sources(${target} PRIVATE ${_bridge_c} ${_bridge_h})
  # PUBLIC headers: code linking the host target (e.g. the Python extension) may
  # include <name>_u.h and <openenclave/host.h> too.
  target_include_directories(${target} PUBLIC "${_dir}")
  target_compile_definitions(${target} PUBLIC ${_veil_backend_define})
  if(ARG_RUNTIME_FROM)
    # A second bridge in a process whose shared host library (built with its own
    # veil_add_host_bridge) already holds the runtime: use that copy, its headers
    # and its definitions, never a second one.
    target_link_libraries(${target} PUBLIC ${ARG_RUNTIME_FROM})
    return()
  endif()
  # The host runtime is a static library holding process-wide state (the table of
  # live enclaves). A shared host library keeps the only copy and exports it;
  # propagating the archive to its users would give them a second, disjoint copy.
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "SHARED_LIBRARY" OR _type STREQUAL "MODULE_LIBRARY")
    set(_scope PRIVATE)
  else()
    set(_scope PUBLIC)
  endif()
  if(VEIL_BACKEND STREQUAL "openenclave")
    target_link_libraries(${target} ${_scope} openenclave::oehost)
    target_include_directories(${target} PUBLIC
      $<TARGET_PROPERTY:openenclave::oehost,INTERFACE_INCLUDE_DIRECTORIES>)
    if(VEIL_OE_SIMULATION)
      target_compile_definitions(${target} PUBLIC VEIL_OE_SIMULATION=1)
    endif()
  else()
    target_link_libraries(${target} ${_scope} veil_vhost)
    target_include_directories(${target} PUBLIC "${VEIL_RUNTIME_INCLUDE_DIR}")
  endif()
endfunction()

# -- veil_enclave_image -----------------------------------------------------------

function(veil_enclave_image target out_var)
  if(VEIL_BACKEND STREQUAL "openenclave")
    get_target_property(_signed ${target} VEIL_SIGNED_IMAGE)
    set(${out_var} "${_signed}" PARENT_SCOPE)
  else()
    set(${out_var} "$<TARGET_FILE:${target}>" PARENT_SCOPE)
  endif()
endfunction()

# -- veil_add_symbol_check --------------------------------------------------------

# CTest check that a virtual enclave image imports nothing beyond memory, string,
# math, crypto and C++ runtime functions (no files, sockets, processes). SDK
# images are linked statically against Open Enclave's own libc, which offers no
# such calls, so the check applies to the virtual backend only.
function(veil_add_symbol_check target)
  if(NOT VEIL_BACKEND STREQUAL "virtual")
    message(STATUS "veil: ${target}: the import check applies to virtual images only")
    return()
  endif()
  find_program(VEIL_NM_EXECUTABLE nm REQUIRED)
  add_test(NAME ${target}.enclave_symbols
    COMMAND "${Python3_EXECUTABLE}" "${VEIL_SYMBOL_CHECKER}" --nm "${VEIL_NM_EXECUTABLE}"
            $<TARGET_FILE:${target}>)
endfunction()
