"""Reading the CPU's bfloat16 units from /proc/cpuinfo texts, without such a CPU."""

from lesionseg_tf import hardware

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme sse2 avx2 avx512f avx512_vnni avx512_bf16 fma
processor\t: 1
flags\t\t: fpu vme sse2 avx2 avx512f avx512_vnni avx512_bf16 fma
"""
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f amx_bf16 amx_tile amx_int8 avx512_bf16\n"
ICE_LAKE = "flags\t\t: avx2 avx512f avx512_vnni avx512_vbmi2\n"
GRAVITON3 = "Features\t: fp asimd bf16 sve\n"


def test_units_are_read_from_the_flags():
    assert hardware.bfloat16_units(hardware.cpu_flags(ZEN4)) == ["AVX512_BF16"]
    assert hardware.bfloat16_units(hardware.cpu_flags(SAPPHIRE_RAPIDS)) == ["AVX512_BF16",
                                                                          "AMX-BF16"]
    assert hardware.bfloat16_units(hardware.cpu_flags(ICE_LAKE)) == []
    assert hardware.bfloat16_units(hardware.cpu_flags(GRAVITON3)) == []  # not oneDNN's x86 units
    assert hardware.cpu_flags("") == set()


def test_an_unreadable_cpuinfo_is_no_flags(tmp_path):
    assert hardware.read_cpu_flags(str(tmp_path / "missing")) == set()
    (tmp_path / "cpuinfo").write_text(ZEN4)
    assert "avx512_bf16" in hardware.read_cpu_flags(str(tmp_path / "cpuinfo"))
