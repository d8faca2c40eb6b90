"""Every benchmark's JSON names the machine it ran on: the CPU model, not only its architecture."""

import platform

from embodied.bench.machine import cpu_model, describe


def test_cpu_model_is_read_from_cpuinfo_and_falls_back_to_the_architecture(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2\n\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 7B13\n")
    assert cpu_model(info) == "AMD EPYC 7B13"
    info.write_text("processor\t: 0\nmodel name\t: \n")  # present but empty, as on some VMs
    assert cpu_model(info) == (platform.processor() or platform.machine())
    assert cpu_model(tmp_path / "missing") == (platform.processor() or platform.machine())


def test_describe_keeps_the_benchmarks_own_entries():
    machine = describe(cores_used=1, gl="egl")
    assert machine["cores_used"] == 1 and machine["gl"] == "egl"
    assert machine["arch"] == platform.machine() and machine["cores"] >= 1 and machine["cpu"]
