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
    assert hardware.bfloat16_units(hardware.cpu_flags(SAPPHIRE_RAPIDS)) == [
        "AVX512_BF16",
        "AMX-BF16",
    ]
    assert hardware.bfloat16_units(hardware.cpu_flags(ICE_LAKE)) == []
    assert hardware.bfloat16_units(hardware.cpu_flags(GRAVITON3)) == []  # not oneDNN's x86 units
    assert hardware.cpu_flags("") == set()


def test_an_unreadable_cpuinfo_is_no_flags(tmp_path):
    assert hardware.read_cpu_flags(str(tmp_path / "missing")) == set()
    (tmp_path / "cpuinfo").write_text(ZEN4)
    assert "avx512_bf16" in hardware.read_cpu_flags(str(tmp_path / "cpuinfo"))


MEASURED = (
    hardware.Bfloat16Measurement("AMX-BF16", "an AMX machine", {64: 2.6, 448: 3.0}),
    hardware.Bfloat16Measurement("AVX512_BF16", "an AVX-512 machine", {64: 2.0, 448: 1.6}),
)


def advice(units, **kw):
    return hardware.bfloat16_advice(
        **{
            "units": units,
            "gpu_visible": False,
            "precision": "none",
            "precision_given": False,
            "image_size": 448,
            **kw,
        }
    )


def test_the_start_up_advice_appears_only_on_a_cpu_with_units_and_the_default_flag(monkeypatch):
    monkeypatch.setattr(hardware, "BFLOAT16_MEASUREMENTS", MEASURED)
    monkeypatch.setattr(hardware, "BFLOAT16_JACCARD_CHANGE", -0.001)
    units = hardware.bfloat16_units(hardware.cpu_flags(ZEN4))
    line = advice(units)
    assert line.startswith(
        "this CPU has bfloat16 units (AVX512_BF16): --mixed_precision=bfloat16 "
        "trained 1.6x faster at 448x448 on an AVX-512 machine"
    )
    assert "validation Jaccard -0.001 vs float32" in line and len(line) < 200
    assert "2.0x faster at 64x64" in advice(units, image_size=96)  # the nearest size
    assert advice(units, precision_given=True) is None  # the user chose
    assert advice(units, precision="bfloat16", precision_given=True) is None
    assert advice(units, gpu_visible=True) is None
    assert advice([]) is None  # float32 on a CPU without units: nothing to say
    warning = advice([], precision="bfloat16", precision_given=True)
    assert warning.startswith("this CPU has no bfloat16 units") and "much slower" in warning


def test_a_cpu_with_amx_is_told_the_amx_measurement(monkeypatch):
    monkeypatch.setattr(hardware, "BFLOAT16_MEASUREMENTS", MEASURED)
    units = hardware.bfloat16_units(hardware.cpu_flags(SAPPHIRE_RAPIDS))
    line = advice(units)
    assert "(AVX512_BF16, AMX-BF16)" in line
    assert "3.0x faster at 448x448 on an AMX machine" in line
    assert "2.6x faster at 64x64 on an AMX machine" in advice(units, image_size=64)
    assert hardware.bfloat16_measurement(units).unit == "AMX-BF16"
    assert hardware.bfloat16_measurement(hardware.bfloat16_units(set())) is None


def test_the_shipped_measurements_name_each_kind_once_fastest_first():
    kinds = [m.unit for m in hardware.BFLOAT16_MEASUREMENTS]
    assert kinds == ["AMX-BF16", "AVX512_BF16"]
    assert set(kinds) == set(hardware.BFLOAT16_FLAGS.values())
    amx, avx = hardware.BFLOAT16_MEASUREMENTS
    for size in set(amx.speedup) & set(avx.speedup):
        assert amx.speedup[size] > avx.speedup[size]
