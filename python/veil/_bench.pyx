# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython bindings of the bench enclave image (host/bench/baseline.h).

Built only with VEIL_BUILD_BENCHMARKS, like the bench image it loads: the
benchmarks' baseline (b), float32 training entirely inside the enclave. The
production image (veil._native) has no such code.
"""
cimport cython
from libc.stdint cimport uint32_t, int32_t
from libcpp cimport bool
from libcpp.string cimport string

import numpy as np

from veil import _errors
from veil._native cimport (
    StepResult, TrainConfig, _train_config, veil_translate_exception, set_error_type, kEnclave,
    kInput, kConfig, kProtocol, kVerification, kDevice,
)

# This module translates C++ errors on its own (a table per extension module).
set_error_type(kEnclave, _errors.EnclaveError)
set_error_type(kInput, _errors.InputError)
set_error_type(kConfig, _errors.ConfigError)
set_error_type(kProtocol, _errors.ProtocolError)
set_error_type(kVerification, _errors.VerificationError)
set_error_type(kDevice, _errors.DeviceError)


cdef extern from "baseline.h" namespace "veil::bench":
    cdef cppclass BenchEnclave:
        BenchEnclave(const string& image_path, bool debug) except +veil_translate_exception
        const string& image_path()

    string bench_image_path "veil::bench::BenchEnclave::default_image_path"()

    cdef cppclass EnclaveOnlyTrainer:
        EnclaveOnlyTrainer(BenchEnclave& enclave, const TrainConfig& config) except +veil_translate_exception
        StepResult step(const double* x, const int32_t* labels, size_t batch) except +veil_translate_exception nogil
        void predict(const double* x, size_t batch, double* out) except +veil_translate_exception nogil
        double gemm(uint32_t m, uint32_t n, uint32_t k, uint32_t repeats) except +veil_translate_exception nogil
        void use_threads(unsigned threads) except +veil_translate_exception nogil


def default_image_path():
    """Where the bench image is loaded from by default: beside the production image."""
    return bench_image_path().decode()


cdef class NativeBenchEnclave:
    """The bench enclave image, loaded on its own."""
    cdef BenchEnclave* ptr

    def __cinit__(self, str image_path="", bint debug=False):
        self.ptr = new BenchEnclave(image_path.encode(), debug)

    def __dealloc__(self):
        del self.ptr

    @property
    def image_path(self):
        return self.ptr.image_path().decode()


@cython.no_gc_clear  # its enclave outlives the session and its lent threads
cdef class NativeEnclaveOnlyTrainer:
    """The benchmarks' baseline: float32 training entirely inside the bench enclave."""
    cdef EnclaveOnlyTrainer* ptr
    cdef NativeBenchEnclave enclave
    cdef readonly size_t features
    cdef readonly size_t classes

    def __cinit__(self, NativeBenchEnclave enclave, list layers, dict config):
        cdef TrainConfig c = _train_config(layers, config)
        self.enclave = enclave
        self.features = layers[0][0]
        self.classes = layers[len(layers) - 1][1]
        self.ptr = new EnclaveOnlyTrainer(enclave.ptr[0], c)

    def __dealloc__(self):
        del self.ptr

    def step(self, const double[:, ::1] x not None, const int32_t[::1] labels not None):
        if <size_t> x.shape[1] != self.features or labels.shape[0] != x.shape[0] or x.shape[0] == 0:
            raise _errors.InputError(f"x must be (n, {self.features}) with n labels, n > 0")
        cdef StepResult r
        with nogil:
            r = self.ptr.step(&x[0, 0], &labels[0], x.shape[0])
        return r.loss, r.correct

    def predict(self, const double[:, ::1] x not None):
        if <size_t> x.shape[1] != self.features or x.shape[0] == 0:
            raise _errors.InputError(f"x must be (n, {self.features}), n > 0")
        out = np.empty((x.shape[0], self.classes), dtype=np.float64)
        cdef double[:, ::1] out_view = out
        with nogil:
            self.ptr.predict(&x[0, 0], x.shape[0], &out_view[0, 0])
        return out

    def use_threads(self, unsigned threads):
        """Run the in-enclave GEMM on `threads` threads (host threads lent to its session)."""
        with nogil:
            self.ptr.use_threads(threads)

    def gemm(self, uint32_t m, uint32_t n, uint32_t k, uint32_t repeats=1):
        """Run the enclave's float32 GEMM; returns a checksum of the product."""
        cdef double checksum
        with nogil:
            checksum = self.ptr.gemm(m, n, k, repeats)
        return checksum
