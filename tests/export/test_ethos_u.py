"""The ethos-u backend (Arm Ethos-U NPU through TOSA and vela).

Its toolchain lives in its own venv (.venv-ethos, `make ethos-u-setup`): executorch[ethos-u] pins
ml_dtypes 0.5.1, which onnx in the main .venv cannot use. The end-to-end test lowers the shipped
vit_pico with that venv in a subprocess and skips where it is not built; the rest runs in any venv:
vela's summary CSV parsed into the manifest's estimate, and verify/bench refusing an ethos-u .pte
with a one-line reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from export.backends import describe_npu_estimate, vela_estimate
from export.cli import app
from export.errors import ExportError
from glasses_runtime.manifest import Manifest, TensorSpec, write_manifest

ROOT = Path(__file__).resolve().parents[2]
ETHOS_PYTHON = ROOT / ".venv-ethos" / "bin" / "python"
ETHOS_EXPORT = ROOT / ".venv-ethos" / "bin" / "glasses-export"
PICO = ROOT / "edge_models" / "weights" / "vit_pico.safetensors"
runner = CliRunner()

# The summary vela 5.1.0 wrote for the shipped vit_pico, int8 (4 calibration frames), lowered for
# ethos-u85-256 (Ethos_U85_SYS_DRAM_Mid, Sram_Only) by export_model(..., npu_target="ethos-u85-256"):
# its header row and values row, unchanged (split only to fit the line length).
VELA_SUMMARY_CSV = (
    "experiment,network,accelerator_configuration,system_config,memory_mode,core_clock,arena_cache_size,s"
    "ram_bandwidth,dram_bandwidth,on_chip_flash_bandwidth,off_chip_flash_bandwidth,weights_storage_area,f"
    "eature_map_storage_area,inferences_per_second,batch_size,inference_time,passes_before_fusing,passes_"
    "after_fusing,sram_memory_used,dram_memory_used,on_chip_flash_memory_used,off_chip_flash_memory_used,"
    "total_original_weights,total_npu_encoded_weights,sram_feature_map_read_bytes,sram_feature_map_write_"
    "bytes,sram_weight_read_bytes,sram_weight_write_bytes,sram_total_bytes,dram_feature_map_read_bytes,dr"
    "am_feature_map_write_bytes,dram_weight_read_bytes,dram_weight_write_bytes,dram_total_bytes,on_chip_f"
    "lash_feature_map_read_bytes,on_chip_flash_feature_map_write_bytes,on_chip_flash_weight_read_bytes,on"
    "_chip_flash_weight_write_bytes,on_chip_flash_total_bytes,off_chip_flash_feature_map_read_bytes,off_c"
    "hip_flash_feature_map_write_bytes,off_chip_flash_weight_read_bytes,off_chip_flash_weight_write_bytes"
    ",off_chip_flash_total_bytes,nn_macs,nn_tops,cycles_npu,cycles_sram_access,cycles_dram_access,cycles_"
    "on_chip_flash_access,cycles_off_chip_flash_access,cycles_total"
    "\n"
    "default,out,Ethos_U85_256,Ethos_U85_SYS_DRAM_Mid,Sram_Only,1000000000.0,1073741824.0,29.802322387695"
    "312,11.175870895385742,29.802322387695312,14.901161193847656,On-chip Flash,SRAM,559.970926309506,1,0"
    ".001785807,270,270,54.0,0.0,677.046875,0.0,516096,645536,2855516,1365720,4288896,0,8581556,0,0,0,0,0"
    ",0,0,0,0,0,0,0,0,0,0,19937988,0.02232938721821563,1785807,356110,0,0,0,1785807"
    "\n"
)


@pytest.mark.slow
def test_lower_vit_pico_for_ethos_u55_in_its_venv(bikes_frames, tmp_path):
    if not (ETHOS_PYTHON.is_file() and ETHOS_EXPORT.is_file()):
        pytest.skip("the Ethos-U toolchain venv is not built: run `make ethos-u-setup` (about 2 minutes)")
    calib = tmp_path / "frames"  # 4 to calibrate, the next 2 held out for the fidelity check
    calib.mkdir()
    for f in sorted(bikes_frames.iterdir())[:6]:
        shutil.copy(f, calib / f.name)
    out = tmp_path / "out"
    cmd = [
        str(ETHOS_EXPORT),
        "lower",
        str(PICO),
        "--quantize",
        "int8",
        "--backend",
        "ethos-u",
        "--calib",
        str(calib),
        "--num-calib",
        "4",
        "--no-tokens",  # as measured in docs/export.md: the pooled embedding only (the NPU path is int8 end to end)
        "--out",
        str(out),
        "--json",
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr[-4000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])  # vela's own report goes to stderr
    pte = Path(report["pte"])
    assert pte.is_file() and pte.stat().st_size > 10_000
    manifest = json.loads(Path(report["manifest"]).read_text())
    assert manifest["backend"] == "ethos-u"
    assert manifest["quantization"]["mode"] == "int8"
    assert "EthosUQuantizer" in manifest["quantization"]["scheme"]
    assert manifest["quantization"]["fidelity_vs_fp32"]["cosine_min"] > 0.9
    delegation = manifest["delegation"]
    assert delegation["delegated_subgraphs"] >= 1
    est = delegation["npu_estimate"]
    assert est["target"] == "ethos-u55-128"
    assert est["inference_time_ms"] > 0 and est["cycles"] > 0 and est["macs"] > 0
    print(f"ethos-u lowering of vit_pico: {elapsed:.0f} s; vela: {est}; delegation: {delegation}")

    # inspect reads the program in the same venv although no runtime here has the EthosUBackend
    res = subprocess.run(
        [str(ETHOS_EXPORT), "inspect", str(pte), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    meth = json.loads(res.stdout.strip().splitlines()[-1])["methods"][0]
    assert meth["delegates"].get("EthosUBackend", 0) >= 1
    assert meth["inputs"][0]["shape"] == [1, 3, 96, 96]
    assert meth["outputs"][0]["shape"] == [1, 96]


def test_vela_summary_csv_becomes_the_estimate(tmp_path):
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "out_summary_Ethos_U85_SYS_DRAM_Mid.csv").write_text(VELA_SUMMARY_CSV)
    est = vela_estimate(tmp_path, "ethos-u85-256")
    assert est == {
        "target": "ethos-u85-256",
        "system_config": "Ethos_U85_SYS_DRAM_Mid",
        "memory_mode": "Sram_Only",
        "accelerator_configuration": "Ethos_U85_256",
        "core_clock_hz": 1_000_000_000,
        "inference_time_ms": pytest.approx(1.785807),
        "inferences_per_second": pytest.approx(559.970926309506),
        "cycles": 1_785_807,
        "npu_cycles": 1_785_807,
        "macs": 19_937_988,
        "original_weights_bytes": 516_096,
        "npu_encoded_weights_bytes": 645_536,
        "sram_bytes": 54 * 1024,  # vela writes KiB; areas it left at 0 (DRAM, off-chip flash) are left out
        "on_chip_flash_bytes": 693_296,
    }
    assert describe_npu_estimate(est).startswith(
        "vela estimate (ethos-u85-256, Ethos_U85_SYS_DRAM_Mid, Sram_Only)"
    )


def test_vela_estimate_without_a_summary_is_an_error(tmp_path):
    with pytest.raises(ExportError, match="no summary CSV"):
        vela_estimate(tmp_path, "ethos-u55-128")


def _fake_ethos_pte(tmp_path: Path) -> Path:
    """A manifest that says ethos-u beside some bytes: verify/bench must stop at the manifest."""
    pte = tmp_path / "encoder_vit_pico_int8_ethos-u.pte"
    pte.write_bytes(b"\0" * 64)
    write_manifest(
        Manifest(
            kind="encoder",
            preset="vit_pico",
            backend="ethos-u",
            inputs=[TensorSpec("image", [1, 3, 96, 96])],
            outputs=[TensorSpec("embedding", [1, 96])],
            pte_file=pte.name,
            pte_sha256="0" * 64,
            quantization={"mode": "int8"},
        ),
        pte,
    )
    return pte


@pytest.mark.parametrize("command", ["verify", "bench"])
def test_verify_and_bench_say_an_ethos_u_pte_runs_on_the_npu_only(tmp_path, bikes_frames, command):
    pte = _fake_ethos_pte(tmp_path)
    args = [command, str(pte)] + (["--images", str(bikes_frames)] if command == "verify" else [])
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Ethos-U" in lines[0] and "FVP" in lines[0], res.output
    assert "Traceback" not in res.output


def test_ethos_u_refuses_dynamic_int8(tmp_path):
    res = runner.invoke(
        app,
        ["lower", str(PICO), "--backend", "ethos-u", "--quantize", "int8-dynamic", "--out", str(tmp_path)],
    )
    assert res.exit_code == 2 and "static int8 only" in res.output, res.output
