#pragma once
// Turns the veil::Error hierarchy into the Python exceptions of veil._errors.
// Cython calls veil_translate_exception() inside its catch block (except +...).
#include <Python.h>

#include <new>
#include <stdexcept>

#include "veil/error.h"

namespace veil::python {

enum ErrorKind { kEnclave, kInput, kConfig, kProtocol, kVerification, kDevice, kErrorKinds };
inline PyObject* error_types[kErrorKinds] = {nullptr};

/** Register the Python class raised for kind (kept alive for the process). */
inline void set_error_type(int kind, PyObject* type) {
  if (kind < 0 || kind >= kErrorKinds) return;
  Py_XINCREF(type);
  error_types[kind] = type;
}

inline void set_error(ErrorKind kind, const char* what) {
  PyErr_SetString(error_types[kind] ? error_types[kind] : PyExc_RuntimeError, what);
}

}  // namespace veil::python

inline void veil_translate_exception() {
  using namespace veil::python;
  try {
    throw;
  } catch (const veil::VerificationError& e) {
    set_error(kVerification, e.what());
  } catch (const veil::ConfigError& e) {
    set_error(kConfig, e.what());
  } catch (const veil::InputError& e) {
    set_error(kInput, e.what());
  } catch (const veil::ProtocolError& e) {
    set_error(kProtocol, e.what());
  } catch (const veil::DeviceError& e) {
    set_error(kDevice, e.what());
  } catch (const veil::Error& e) {
    set_error(kEnclave, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}
