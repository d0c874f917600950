# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython bindings over veil's C++ API (host/include/veil/).

Arrays cross without copies: every buffer handed to C++ is a C-contiguous view
of the caller's numpy array. Long calls release the GIL; devices written in
Python take it back inside their callbacks.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libc.string cimport memcpy, strncpy
from libcpp.string cimport string
from libcpp.vector cimport vector
from cpython.ref cimport PyObject

import numpy as np
cimport numpy as cnp
cimport cython

from veil import _codes, _errors

cnp.import_array()

set_error_type(kEnclave, _errors.EnclaveError)
set_error_type(kInput, _errors.InputError)
set_error_type(kConfig, _errors.ConfigError)
set_error_type(kProtocol, _errors.ProtocolError)
set_error_type(kVerification, _errors.VerificationError)
set_error_type(kDevice, _errors.DeviceError)


def version():
    """The C++ library's version string."""
    return veil_version().decode()


import logging

_enclave_log = logging.getLogger("veil.enclave")
_LOG_LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)


cdef void _log_to_python(int level, const char* message) noexcept with gil:
    # The enclave's messages go to Python's logging ("veil.enclave"), silent unless the
    # application configures it; the exception raised for the same failure says it all.
    try:
        _enclave_log.log(_LOG_LEVELS[min(max(level, 0), 3)], "%s",
                         message.decode("utf-8", "replace"))
    except BaseException:
        pass


set_log_handler(_log_to_python)


def backend():
    """The enclave backend this build uses: "virtual" or "openenclave"."""
    return enclave_backend_name().decode()


def default_enclave_path():
    """Where the enclave image is loaded from by default."""
    return default_image_path().decode()


cdef class NativeEnclave:
    """A loaded enclave image (one per process is typical)."""
    cdef Enclave* ptr

    def __cinit__(self, str image_path="", bint debug=False):
        self.ptr = new Enclave(image_path.encode(), debug)

    def __dealloc__(self):
        del self.ptr

    def info(self):
        cdef EnclaveInfo i = self.ptr.info()
        return {
            "version": i.version.decode(),
            "backend": i.backend.decode(),
            "features": [f.decode() for f in i.feature_names],
            "max_sessions": i.max_sessions,
            "debug": i.debug,
        }

    @property
    def image_path(self):
        return self.ptr.image_path().decode()


cdef class NativeDevice:
    """Owner of a C++ Device that a trainer can use."""
    cdef Device* ptr
    cdef object python_device
    cdef object last_error
    cdef dict shapes  # layer -> (rows, cols), recorded at upload

    def __dealloc__(self):
        del self.ptr

    @property
    def name(self):
        return self.ptr.name().decode()

    @property
    def python_exception(self):
        """The exception a Python device raised in its last failing call, if any."""
        return self.last_error


def cpu_device(int threads=0):
    """The C++ CPU device (exact float64 products through OpenBLAS)."""
    cdef NativeDevice d = NativeDevice.__new__(NativeDevice)
    d.ptr = new CpuDevice(threads)
    return d


cdef inline object _matrix(const double* p, size_t rows, size_t cols):
    # A read-only numpy view of a buffer the bridge owns for the call's duration.
    if rows == 0 or cols == 0:
        return np.empty((rows, cols), dtype=np.float64)
    cdef const double[:, ::1] view = <const double[:rows, :cols]> p
    arr = np.asarray(view)
    arr.flags.writeable = False
    return arr


cdef inline object _out_matrix(double* p, size_t rows, size_t cols):
    cdef double[:, ::1] view = <double[:rows, :cols]> p
    return np.asarray(view)


cdef inline int _fill(object result, double* p, size_t rows, size_t cols, str what) except -1:
    arr = np.asarray(result)
    if arr.shape != (rows, cols):
        raise ValueError(f"{what} returned shape {arr.shape}, expected {(rows, cols)}")
    _out_matrix(p, rows, cols)[...] = arr
    return 0


cdef int _cb_fail(NativeDevice d, object exc) noexcept:
    d.last_error = exc
    return 1


cdef int _cb_upload(void* self, uint32_t layer, const double* w, size_t rows, size_t cols) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        d.python_device.upload(layer, _matrix(w, rows, cols).copy())
        d.shapes[layer] = (rows, cols)
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef int _cb_forward(void* self, uint32_t layer, const double* a, size_t batch, double* z) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        rows, cols = d.shapes[layer]
        _fill(d.python_device.forward(layer, _matrix(a, batch, rows)), z, batch, cols, "forward")
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef int _cb_backward(void* self, uint32_t layer, const double* dz, size_t batch, double* da) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        rows, cols = d.shapes[layer]
        _fill(d.python_device.backward(layer, _matrix(dz, batch, cols)), da, batch, rows, "backward")
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef int _cb_update(void* self, uint32_t layer, const double* a, const double* dz, size_t batch) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        rows, cols = d.shapes[layer]
        d.python_device.update(layer, _matrix(a, batch, rows), _matrix(dz, batch, cols))
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef int _cb_scale(void* self, uint32_t layer) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        d.python_device.scale(layer)
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef int _cb_max_abs(void* self, uint32_t layer, double* out) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        out[0] = float(d.python_device.max_abs(layer))
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef int _cb_download(void* self, uint32_t layer, double* w) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        rows, cols = d.shapes[layer]
        _fill(d.python_device.download(layer), w, rows, cols, "download")
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef int _cb_exchange(void* self, const uint8_t* message, size_t size, uint8_t* all,
                      size_t capacity) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    try:
        received = bytes(d.python_device.exchange((<const char*> message)[:size]))
        if len(received) != capacity:
            raise ValueError(f"exchange returned {len(received)} bytes, expected {capacity}")
        memcpy(all, <const char*> received, capacity)
        return 0
    except BaseException as e:
        return _cb_fail(d, e)


cdef void _cb_describe(void* self, char* out, size_t capacity) noexcept with gil:
    cdef NativeDevice d = <NativeDevice> self
    text = f"{type(d.last_error).__name__}: {d.last_error}".encode("utf-8", "replace")
    strncpy(out, text, capacity - 1)
    out[capacity - 1] = 0


cdef DeviceCallbacks _callbacks
_callbacks.upload = _cb_upload
_callbacks.forward = _cb_forward
_callbacks.backward = _cb_backward
_callbacks.update = _cb_update
_callbacks.scale = _cb_scale
_callbacks.max_abs = _cb_max_abs
_callbacks.download = _cb_download
_callbacks.exchange = _cb_exchange
_callbacks.describe = _cb_describe


def python_device(device):
    """Wrap a veil.Device written in Python so the enclave's ocalls reach it."""
    cdef NativeDevice d = NativeDevice.__new__(NativeDevice)
    d.python_device = device
    d.shapes = {}
    d.ptr = new PyDevice(<void*> d, _callbacks, device.name.encode())
    return d


cdef dict _timing_dict(Timing t):
    return {"total": t.total_seconds, "device": t.device_seconds,
            "enclave": t.enclave_seconds(), "bytes_to_device": t.bytes_to_device,
            "bytes_from_device": t.bytes_from_device}


cdef LayerSpec _layer_spec(object layer) except *:
    """A layer's wire tuple: (inputs, outputs, activation) for a dense layer, then for a
    convolution (kind, channels, height, width, kernel, stride, padding, pool, pool_size)."""
    cdef LayerSpec spec
    fields = tuple(layer) + (0,) * (12 - len(layer))
    spec.inputs, spec.outputs = fields[0], fields[1]
    spec.activation = <Activation> <int32_t> fields[2]
    spec.kind = <LayerKind> <int32_t> fields[3]
    spec.channels, spec.height, spec.width = fields[4], fields[5], fields[6]
    spec.kernel, spec.stride, spec.padding = fields[7], fields[8], fields[9]
    spec.pool = <Pool> <int32_t> fields[10]
    spec.pool_size = fields[11]
    return spec


def _input_features(layer) -> int:
    """Values per example a first layer takes: C·H·W for a convolution."""
    if len(layer) > 3 and layer[3] == _codes.LAYER_KIND["conv2d"]:
        return layer[4] * layer[5] * layer[6]
    return layer[0]


cdef TrainConfig _train_config(list layers, dict config) except *:
    cdef TrainConfig c
    for layer in layers:
        c.layers.push_back(_layer_spec(layer))
    c.loss = <Loss> <int32_t> config["loss"]
    c.frac_act = config["frac_act"]
    c.frac_grad = config["frac_grad"]
    c.lr_exp = config["lr_exp"]
    c.max_batch = config["max_batch"]
    c.seed = config["seed"]
    c.act_clip = config["act_clip"]
    c.grad_clip = config["grad_clip"]
    c.weight_max = config["weight_max"]
    return c


cdef dict _stats_dict(SessionStats s):
    return {"step": s.step, "checks_passed": s.checks_passed, "products": s.products,
            "saturated": s.saturated, "lr_exp": s.lr_exp, "aborted": True if s.aborted else False,
            "threads": s.threads, "limb_splits": s.limb_splits,
            "max_abs_refreshes": s.max_abs_refreshes, "update_operands_sent": s.update_operands_sent,
            "audits": s.audits}


# Keeps its enclave until __dealloc__ has closed the session (and so released the
# threads it lent): a garbage collector that cleared the reference first would free
# the enclave while those threads are still inside it.
@cython.no_gc_clear
cdef class NativeTrainer:
    """A verify-mode training session (veil::Trainer)."""
    cdef Trainer* ptr
    cdef NativeEnclave enclave
    cdef NativeDevice device
    cdef readonly size_t features
    cdef readonly size_t classes
    cdef readonly size_t max_batch
    cdef readonly bint joined

    def __cinit__(self, NativeEnclave enclave, NativeDevice device, list layers, dict config,
                  checkpoint=None, list device_weights=None, bytes key=b""):
        """A new session, or with checkpoint: one restored from a sealed checkpoint
        whose device receives device_weights (the raw matrices kept beside it)."""
        cdef TrainConfig c = _train_config(layers, config)
        cdef vector[uint8_t] blob
        cdef vector[uint8_t] key_bytes = key
        cdef vector[vector[double]] stored
        self.enclave = enclave
        self.device = device
        self.features = _input_features(layers[0])
        self.classes = layers[len(layers) - 1][1]
        self.max_batch = config["max_batch"]
        if checkpoint is None:
            self.ptr = new Trainer(enclave.ptr[0], device.ptr[0], c)
            return
        blob = bytes(checkpoint)
        for w in device_weights:
            stored.push_back(np.ascontiguousarray(w, dtype=np.float64).ravel())
        self.ptr = trainer_restore(enclave.ptr[0], device.ptr[0], c, blob, stored, key_bytes).release()

    def checkpoint(self, bytes key=b""):
        """The sealed training state (bytes) and, per layer, the device's raw
        integer weights (flat float64) that the enclave checked before sealing."""
        cdef vector[uint8_t] key_bytes = key
        cdef Checkpoint c
        with nogil:
            c = self.ptr.checkpoint(key_bytes)
        weights = [np.asarray(<double[:w.size()]> w.data()).copy() for w in c.weights]
        return bytes(c.sealed), weights

    def __dealloc__(self):
        del self.ptr

    def step(self, const double[:, ::1] x not None, const int32_t[::1] labels not None):
        cdef size_t batch = x.shape[0]
        if <size_t> x.shape[1] != self.features:
            raise _errors.InputError(f"x has {x.shape[1]} features; the model takes {self.features}")
        if <size_t> labels.shape[0] != batch:
            raise _errors.InputError(f"{labels.shape[0]} labels for a batch of {batch} rows")
        if batch == 0 and not self.joined:
            raise _errors.InputError("the batch is empty")
        cdef StepResult r
        # A worker of a run takes part in every step, with no rows of a short last batch too.
        cdef const double* x_ptr = &x[0, 0] if batch else NULL
        cdef const int32_t* labels_ptr = &labels[0] if batch else NULL
        with nogil:
            r = self.ptr.step(x_ptr, labels_ptr, batch)
        return r.loss, r.correct, r.saturated, r.step, r.checks_passed

    def join(self, bytes run_key not None, uint32_t worker, uint32_t workers):
        """Make this session worker `worker` of a data-parallel run of `workers`
        (veil::Trainer::join): its device must implement exchange and sum every
        worker's update."""
        cdef vector[uint8_t] key_bytes = run_key
        with nogil:
            self.ptr.join(key_bytes, worker, workers)
        self.joined = True

    def predict(self, const double[:, ::1] x not None):
        cdef size_t batch = x.shape[0]
        if <size_t> x.shape[1] != self.features:
            raise _errors.InputError(f"x has {x.shape[1]} features; the model takes {self.features}")
        if batch == 0:
            raise _errors.InputError("the batch is empty")
        out = np.empty((batch, self.classes), dtype=np.float64)
        cdef double[:, ::1] out_view = out
        with nogil:
            self.ptr.predict(&x[0, 0], batch, &out_view[0, 0])
        return out

    def halve_lr(self):
        with nogil:
            self.ptr.halve_lr()

    def export_weights(self, uint32_t layer):
        cdef vector[double] w
        with nogil:
            w = self.ptr.export_weights(layer)
        return np.asarray(<double[:w.size()]> w.data()).copy()

    def stats(self):
        return _stats_dict(self.ptr.stats())

    def use_threads(self, unsigned threads):
        """Run the session's passes on `threads` threads (veil::Session::use_threads)."""
        with nogil:
            self.ptr.use_threads(threads)

    def timing(self):
        return _timing_dict(self.ptr.timing())

    def reset_timing(self):
        self.ptr.reset_timing()

    @property
    def session_id(self):
        return self.ptr.id()


# ---- Inference (veil::Inference): private and verify-mode inference ----------------------------

# Keeps its enclave until __dealloc__ has closed the session (and so released the
# threads it lent): a garbage collector that cleared the reference first would free
# the enclave while those threads are still inside it.
@cython.no_gc_clear
cdef class NativeInference:
    """An inference session (veil::Inference), private or verify mode.

    weights: one C-contiguous float64 array per layer, (inputs + 1) x outputs with
    the bias last; read while the constructor runs.
    """
    cdef Inference* ptr
    cdef NativeEnclave enclave
    cdef NativeDevice device
    cdef readonly size_t features
    cdef readonly size_t classes

    def __cinit__(self, NativeEnclave enclave, NativeDevice device, list layers, dict config,
                  list weights):
        cdef InferenceConfig c
        cdef vector[const double*] pointers
        cdef const double[:, ::1] view
        for layer in layers:
            c.layers.push_back(_layer_spec(layer))
        c.loss = <Loss> <int32_t> config["loss"]
        c.mode = <InferenceMode> <int32_t> config["mode"]
        c.frac_act = config["frac_act"]
        c.frac_weights = config["frac_weights"]
        c.act_clip = config["act_clip"]
        c.head_layers = config.get("head_layers", 0)
        c.head_lr = config.get("head_lr", 0.1)
        if len(weights) != len(layers):
            raise _errors.InputError(f"{len(weights)} weight matrices for {len(layers)} layers")
        for layer, w in zip(layers, weights):
            inputs, outputs = layer[0], layer[1]
            if w.shape != (inputs + 1, outputs):
                raise _errors.InputError(
                    f"a weight matrix has shape {w.shape}; the layer needs {(inputs + 1, outputs)}")
            view = w
            pointers.push_back(&view[0, 0])
        self.enclave = enclave
        self.device = device
        self.features = _input_features(layers[0])
        self.classes = layers[len(layers) - 1][1]
        self.ptr = new Inference(enclave.ptr[0], device.ptr[0], c, pointers)

    def __dealloc__(self):
        del self.ptr

    def sealed_slot_size(self, uint32_t rows):
        """Bytes of one slot's sealed blobs for batches of up to rows rows."""
        return self.ptr.sealed_slot_size(rows)

    def precompute(self, uint32_t rows):
        """Seal the next slot's U for batches of up to rows rows; returns the blobs (bytes)."""
        cdef vector[uint8_t] blob
        with nogil:
            blob = self.ptr.precompute(rows)
        return (<const char*> blob.data())[:blob.size()]

    def predict(self, const double[:, ::1] x not None, const unsigned char[::1] sealed=None):
        """One batch; private mode passes the next slot's sealed blobs."""
        cdef size_t batch = x.shape[0]
        if <size_t> x.shape[1] != self.features:
            raise _errors.InputError(f"x has {x.shape[1]} features; the model takes {self.features}")
        if batch == 0:
            raise _errors.InputError("the batch is empty")
        cdef const uint8_t* sealed_ptr = NULL
        cdef size_t sealed_size = 0
        if sealed is not None and sealed.shape[0] > 0:
            sealed_ptr = &sealed[0]
            sealed_size = sealed.shape[0]
        out = np.empty((batch, self.classes), dtype=np.float64)
        cdef double[:, ::1] out_view = out
        with nogil:
            self.ptr.predict(&x[0, 0], batch, &out_view[0, 0], sealed_ptr, sealed_size)
        return out

    def train_step(self, const double[:, ::1] x not None, const int32_t[::1] labels not None,
                   const unsigned char[::1] sealed=None):
        """One SGD step of the in-enclave head; returns (loss, correct, saturated, step)."""
        cdef size_t batch = x.shape[0]
        if <size_t> x.shape[1] != self.features:
            raise _errors.InputError(f"x has {x.shape[1]} features; the model takes {self.features}")
        if batch == 0 or <size_t> labels.shape[0] != batch:
            raise _errors.InputError(f"{labels.shape[0]} labels for a batch of {batch} rows")
        cdef const uint8_t* sealed_ptr = NULL
        cdef size_t sealed_size = 0
        if sealed is not None and sealed.shape[0] > 0:
            sealed_ptr = &sealed[0]
            sealed_size = sealed.shape[0]
        cdef HeadStep r
        with nogil:
            r = self.ptr.train_step(&x[0, 0], &labels[0], batch, sealed_ptr, sealed_size)
        return r.loss, r.correct, r.saturated, r.step

    def export_head(self, uint32_t layer):
        """A head layer's trained weights, flat, (inputs + 1) * outputs values."""
        cdef vector[double] w = self.ptr.export_head(layer)
        return np.asarray(<double[:w.size()]> w.data()).copy()
    def use_threads(self, unsigned threads):
        """Run the session's passes on `threads` threads (veil::Session::use_threads)."""
        with nogil:
            self.ptr.use_threads(threads)

    def stats(self):
        return _stats_dict(self.ptr.stats())

    def status(self):
        cdef InferenceStatus s = self.ptr.status()
        return {"batches": s.batches, "next_slot": s.next_slot, "slots_sealed": s.slots_sealed,
                "checks_passed": s.checks_passed, "saturated": s.saturated,
                "aborted": True if s.aborted else False}

    def timing(self):
        return _timing_dict(self.ptr.timing())

    def reset_timing(self):
        self.ptr.reset_timing()

    @property
    def session_id(self):
        return self.ptr.id()
