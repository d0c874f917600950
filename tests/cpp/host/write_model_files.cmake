# cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DPYTHON=... -DOUT_DIR=... -DCONFIG=... -P write_model_files.cmake
#
# Writes the model files of test_model_file.cc with this build tree's veil: installs
# the build's python component and the package's sources into OUT_DIR/package/veil
# and runs write_model_files.py with that package first on PYTHONPATH, so the files
# never come from an older veil installed elsewhere.
foreach(_var BUILD_DIR SOURCE_DIR PYTHON OUT_DIR)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "write_model_files.cmake needs -D${_var}=...")
  endif()
endforeach()

file(REMOVE_RECURSE "${OUT_DIR}")
set(_package "${OUT_DIR}/package/veil")
set(_config_args)
if(CONFIG)
  set(_config_args --config "${CONFIG}")
endif()
execute_process(
  COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --component python --prefix "${_package}"
          ${_config_args}
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
if(_rc)
  message(FATAL_ERROR "installing the python component into ${_package} failed:\n${_out}")
endif()
file(COPY "${SOURCE_DIR}/python/veil/" DESTINATION "${_package}" FILES_MATCHING PATTERN "*.py")

execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env "PYTHONPATH=${OUT_DIR}/package"
          "${PYTHON}" "${SOURCE_DIR}/tests/cpp/host/write_model_files.py" "${OUT_DIR}"
  RESULT_VARIABLE _rc)
if(_rc)
  message(FATAL_ERROR "write_model_files.py failed (exit ${_rc})")
endif()
