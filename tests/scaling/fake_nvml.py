"""A stand-in for the `pynvml` module: the functions sysmetrics calls, over fixed per-GPU values."""
from types import SimpleNamespace


class NVMLError(Exception):
    pass


class FakeNVML:
    def __init__(self, gpus, fail_init=False):
        self.gpus = gpus  # list of dicts: util, enc, dec (None: not supported), used, total, name
        self.fail_init = fail_init
        self.initialized = False

    def nvmlInit(self):
        if self.fail_init:
            raise NVMLError("Driver Not Loaded")
        self.initialized = True

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return self.gpus[h]["name"].encode()  # older bindings return bytes

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-fake-{h}"

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=self.gpus[h]["util"], memory=0)

    def _engine(self, h, key):
        if self.gpus[h][key] is None:
            raise NVMLError("Not Supported")
        return [self.gpus[h][key], 167000]

    def nvmlDeviceGetEncoderUtilization(self, h):
        return self._engine(h, "enc")

    def nvmlDeviceGetDecoderUtilization(self, h):
        return self._engine(h, "dec")

    def nvmlDeviceGetMemoryInfo(self, h):
        g = self.gpus[h]
        return SimpleNamespace(used=g["used"], total=g["total"], free=g["total"] - g["used"])


TWO_GPUS = [
    {"name": "NVIDIA L4", "util": 40, "enc": 85, "dec": 30, "used": 3 * 2**30, "total": 24 * 2**30},
    {"name": "NVIDIA H200", "util": 10, "enc": None, "dec": 90, "used": 2**30, "total": 141 * 2**30},
]
