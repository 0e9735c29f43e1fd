"""CPU utilization of the cgroup quota (v2 and v1, from a fake cgroup tree) or the host; GPUs via NVML."""
import time

import pytest

from framepress.scaling.sysmetrics import CpuSampler, GpuSampler, find_cgroup_cpu, gpu_busy_average

from .fake_nvml import TWO_GPUS, FakeNVML

pytestmark = pytest.mark.timeout(20)


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def cgroup_v2(tmp_path, cpu_max="200000 100000", usage_usec=0, rel="/kubepods/pod1/c1"):
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(tmp_path / "self_cgroup", f"0::{rel}\n")
    d = root / rel.lstrip("/")
    write(d / "cpu.max", cpu_max + "\n")
    write(d / "cpu.stat", f"usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\n")
    return root, d


def test_cgroup_v2_quota(tmp_path):
    root, d = cgroup_v2(tmp_path)
    clock = Clock()
    s = CpuSampler(str(root), str(tmp_path / "self_cgroup"), clock=clock)
    assert s.limit_cores == 2.0 and s.source == "cgroup v2 quota"
    # 10 s at a 2-core quota = 20 core-seconds of capacity; 15 used -> 0.75
    clock.t += 10
    write(d / "cpu.stat", "usage_usec 15000000\n")
    assert s.sample() == pytest.approx(0.75)
    # Over-quota readings (period accounting) are clamped to 1.
    clock.t += 1
    write(d / "cpu.stat", "usage_usec 18000000\n")
    assert s.sample() == 1.0


def test_cgroup_v2_namespaced_root(tmp_path):
    # cgroup namespace: /proc/self/cgroup says "0::/" and the files sit at the mount root.
    root, d = cgroup_v2(tmp_path, rel="/")
    assert d == root
    found = find_cgroup_cpu(str(root), str(tmp_path / "self_cgroup"))
    assert found.version == 2 and found.limit_cores == 2.0


def test_cgroup_v2_without_quota_uses_the_host(tmp_path):
    root, _ = cgroup_v2(tmp_path, cpu_max="max 100000")
    assert find_cgroup_cpu(str(root), str(tmp_path / "self_cgroup")).limit_cores is None
    s = CpuSampler(str(root), str(tmp_path / "self_cgroup"))
    assert s.source == "host"
    assert s.limit_cores >= 1


def test_cgroup_v1_quota(tmp_path):
    root = tmp_path / "cgroup"
    write(tmp_path / "self_cgroup", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    d = root / "cpu,cpuacct" / "docker" / "abc"
    write(d / "cpu.cfs_quota_us", "50000\n")
    write(d / "cpu.cfs_period_us", "100000\n")
    write(d / "cpuacct.usage", "0\n")
    clock = Clock()
    s = CpuSampler(str(root), str(tmp_path / "self_cgroup"), clock=clock)
    assert s.limit_cores == 0.5 and s.source == "cgroup v1 quota"
    clock.t += 4
    write(d / "cpuacct.usage", str(1 * 10**9))  # 1 s of CPU in 4 s at half a core
    assert s.sample() == pytest.approx(0.5)


def test_cgroup_v1_unlimited(tmp_path):
    root = tmp_path / "cgroup"
    write(tmp_path / "self_cgroup", "3:cpu,cpuacct:/\n")
    write(root / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    write(root / "cpuacct" / "cpuacct.usage", "123\n")
    found = find_cgroup_cpu(str(root), str(tmp_path / "self_cgroup"))
    assert found.version == 1 and found.limit_cores is None


def test_no_cgroup_at_all(tmp_path):
    assert find_cgroup_cpu(str(tmp_path / "none"), str(tmp_path / "none_self")) is None


def test_host_sampler_reads_a_ratio():
    s = CpuSampler()  # this machine, whatever it is
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        pass
    value = s.sample()
    assert 0.0 <= value <= 1.0


def test_fake_nvml_gpus():
    nvml = FakeNVML(TWO_GPUS)
    g = GpuSampler(nvml)
    assert g.count == 2 and nvml.initialized
    l4, h200 = g.sample()
    assert (l4.index, l4.name, l4.uuid) == (0, "NVIDIA L4", "GPU-fake-0")
    assert (l4.utilization, l4.encoder_utilization, l4.decoder_utilization) == (0.40, 0.85, 0.30)
    assert l4.memory_used_bytes == 3 * 2**30 and l4.memory_total_bytes == 24 * 2**30
    assert h200.encoder_utilization is None  # NVDEC-only board: no NVENC reading, no error
    assert h200.busy == 0.90 and l4.busy == 0.85
    assert gpu_busy_average([l4, h200]) == pytest.approx(0.875)


def test_nvml_that_fails_to_start_means_no_gpus():
    g = GpuSampler(FakeNVML(TWO_GPUS, fail_init=True))
    assert g.count == 0 and g.sample() == []
    assert gpu_busy_average([]) == 0.0


def test_real_nvml_or_none_never_raises():
    g = GpuSampler()  # the real pynvml: a GPU machine reports GPUs, any other reports none
    stats = g.sample()
    assert len(stats) == g.count
    for s in stats:
        assert s.utilization is None or 0.0 <= s.utilization <= 1.0


def test_worker_details_name_the_gpus():
    from framepress.scaling.hostinfo import hardware
    gpus = hardware(FakeNVML(TWO_GPUS))["gpus"]
    assert [g["name"] for g in gpus] == [g["name"] for g in TWO_GPUS]
    assert [g["index"] for g in gpus] == [0, 1] and all(g["uuid"].startswith("GPU-") for g in gpus)
    assert hardware(FakeNVML(TWO_GPUS, fail_init=True))["gpus"] == []
