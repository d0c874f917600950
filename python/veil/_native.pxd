# Declarations of veil's C++ API (host/include/veil/) for the Cython bindings.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libcpp.memory cimport unique_ptr
from libcpp cimport bool
from libcpp.string cimport string
from libcpp.vector cimport vector


cdef extern from "_errors.h":
    void veil_translate_exception()


cdef extern from "_errors.h" namespace "veil::python":
    enum ErrorKind:
        kEnclave
        kInput
        kConfig
        kProtocol
        kVerification
        kDevice
    void set_error_type(int kind, object type)


cdef extern from "veil/device.h" namespace "veil":
    cdef cppclass Device:
        string name()


cdef extern from "veil/cpu_device.h" namespace "veil":
    cdef cppclass CpuDevice(Device):
        CpuDevice(int threads) except +veil_translate_exception


cdef extern from "_py_device.h" namespace "veil::python":
    cdef struct DeviceCallbacks:
        int (*upload)(void*, uint32_t, const double*, size_t, size_t) noexcept
        int (*forward)(void*, uint32_t, const double*, size_t, double*) noexcept
        int (*backward)(void*, uint32_t, const double*, size_t, double*) noexcept
        int (*update)(void*, uint32_t, const double*, const double*, size_t) noexcept
        int (*scale)(void*, uint32_t) noexcept
        int (*max_abs)(void*, uint32_t, double*) noexcept
        int (*download)(void*, uint32_t, double*) noexcept
        int (*exchange)(void*, const uint8_t*, size_t, uint8_t*, size_t) noexcept
        void (*describe)(void*, char*, size_t) noexcept
    cdef cppclass PyDevice(Device):
        PyDevice(void* self, const DeviceCallbacks& callbacks, string name)


cdef extern from "veil/enclave.h" namespace "veil":
    cdef cppclass EnclaveInfo:
        string version
        string backend
        uint64_t features
        vector[string] feature_names
        uint32_t max_sessions
        bint debug

    cdef cppclass Enclave:
        Enclave(const string& image_path, bool debug) except +veil_translate_exception
        EnclaveInfo info() except +veil_translate_exception
        const string& image_path()

    ctypedef void (*LogHandler)(int, const char*) noexcept
    void set_log_handler "veil::set_log_handler"(LogHandler handler) noexcept
    string veil_version "veil::version"()
    string enclave_backend_name "veil::Enclave::backend"()
    string default_image_path "veil::Enclave::default_image_path"()


cdef extern from "veil/session.h" namespace "veil":
    cdef cppclass SessionStats:
        uint64_t step
        uint64_t checks_passed
        uint64_t products
        uint64_t saturated
        int32_t lr_exp
        bool aborted
        uint32_t threads
        uint64_t limb_splits
        uint64_t max_abs_refreshes
        uint64_t update_operands_sent
        uint64_t audits

    cdef cppclass Session:
        Session(Enclave& enclave) except +veil_translate_exception
        uint64_t id()
        SessionStats stats() except +veil_translate_exception
        void use_threads(unsigned threads) except +veil_translate_exception nogil


# The codes' values live in veil/codes.h, written from the EDL; Python takes them
# from veil._codes (written from the same place) and passes them as integers.
cdef extern from "veil/codes.h" namespace "veil":
    cdef enum class Activation(int32_t):
        pass

    cdef enum class Loss(int32_t):
        pass

    cdef enum class InferenceMode(int32_t):
        pass

    cdef enum class LayerKind(int32_t):
        pass

    cdef enum class Pool(int32_t):
        pass

cdef extern from "veil/trainer.h" namespace "veil":
    cdef cppclass LayerSpec:
        uint32_t inputs
        uint32_t outputs
        Activation activation
        LayerKind kind
        uint32_t channels, height, width, kernel, stride, padding
        Pool pool
        uint32_t pool_size

    cdef cppclass TrainConfig:
        vector[LayerSpec] layers
        Loss loss
        int32_t frac_act
        int32_t frac_grad
        int32_t lr_exp
        uint32_t max_batch
        uint64_t seed
        double act_clip
        double grad_clip
        double weight_max

    cdef cppclass StepResult:
        double loss
        uint32_t correct
        uint32_t saturated
        uint64_t step
        uint64_t checks_passed

    cdef cppclass Timing:
        double total_seconds
        double device_seconds
        uint64_t bytes_to_device
        uint64_t bytes_from_device
        double enclave_seconds()

    cdef cppclass Checkpoint:
        vector[uint8_t] sealed
        vector[vector[double]] weights

    cdef cppclass Trainer(Session):
        Trainer(Enclave& enclave, Device& device, const TrainConfig& config) except +veil_translate_exception
        StepResult step(const double* x, const int32_t* labels, size_t batch) except +veil_translate_exception nogil
        void predict(const double* x, size_t batch, double* out) except +veil_translate_exception nogil
        void halve_lr() except +veil_translate_exception nogil
        void join(const vector[uint8_t]& run_key, uint32_t worker, uint32_t workers) except +veil_translate_exception nogil
        vector[double] export_weights(uint32_t layer) except +veil_translate_exception nogil
        Checkpoint checkpoint(const vector[uint8_t]& key) except +veil_translate_exception nogil
        Timing timing()
        void reset_timing()

    unique_ptr[Trainer] trainer_restore "veil::Trainer::restore"(
        Enclave& enclave, Device& device, const TrainConfig& config,
        const vector[uint8_t]& checkpoint, const vector[vector[double]]& device_weights,
        const vector[uint8_t]& key) except +veil_translate_exception


# ---- Inference (veil/inference.h): private and verify-mode inference --------------------------
from libc.stdint cimport uint8_t

cdef extern from "veil/inference.h" namespace "veil":
    cdef cppclass InferenceConfig:
        vector[LayerSpec] layers
        Loss loss
        InferenceMode mode
        int32_t frac_act
        int32_t frac_weights
        double act_clip
        uint32_t head_layers
        double head_lr

    cdef cppclass HeadStep:
        double loss
        uint32_t correct
        uint32_t saturated
        uint64_t step

    cdef cppclass InferenceStatus:
        uint64_t batches
        uint64_t next_slot
        uint64_t slots_sealed
        uint64_t checks_passed
        uint64_t saturated
        bool aborted

    cdef cppclass Inference(Session):
        Inference(Enclave& enclave, Device& device, const InferenceConfig& config,
                  const vector[const double*]& weights) except +veil_translate_exception
        size_t sealed_slot_size(uint32_t rows) except +veil_translate_exception
        vector[uint8_t] precompute(uint32_t rows) except +veil_translate_exception nogil
        void predict(const double* x, size_t batch, double* out, const uint8_t* sealed,
                     size_t sealed_size) except +veil_translate_exception nogil
        HeadStep train_step(const double* x, const int32_t* labels, size_t batch,
                            const uint8_t* sealed, size_t sealed_size) except +veil_translate_exception nogil
        vector[double] export_head(uint32_t layer) except +veil_translate_exception
        InferenceStatus status() except +veil_translate_exception
        Timing timing()
        void reset_timing()


# Defined in _native.pyx; veil._bench (the bench image's bindings) cimports it.
cdef TrainConfig _train_config(list layers, dict config) except *
