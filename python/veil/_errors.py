"""Exceptions raised by veil. Every one names the call and what was wrong."""


class Error(Exception):
    """Base class of every veil error."""


class EnclaveError(Error):
    """The enclave could not be loaded or called, or failed internally."""


class ProtocolError(EnclaveError):
    """A call arrived out of protocol order, or after the session aborted."""


class InputError(Error, ValueError):
    """Bad input: wrong shape, dtype, NaN/Inf, out-of-range value. The session stays usable."""


class ConfigError(Error, ValueError):
    """A configuration was refused, e.g. one whose products could exceed 2^53."""


class VerificationError(Error):
    """A device result failed its integrity check. The session is aborted."""


class DeviceError(Error):
    """The device reported a failure (an exception in a Python device, a CUDA error)."""


class SaturationWarning(UserWarning):
    """Many fixed-point values were clipped during training: the inputs are out of scale."""
