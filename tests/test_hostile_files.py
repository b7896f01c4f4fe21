"""Hostile checkpoint files: alae-import reads files people download, so a small file crafted
to exhaust memory or time must get one line and exit 2 like a damaged one, with memory bounded
by what the file can justify. Each case runs the real console script in a child process under
an address-space cap (1 GiB: it never loads TensorFlow for a file it refuses), and its peak
resident memory is measured (``os.wait4``) and printed (``pytest -s``).

The cases: a pickle nested 200,000 lists deep; a stride-0 tensor viewing a 4-byte storage as
100,000 x 100,000; a zip entry that inflates to 3.5 GiB (3.5 MB on disk) behind a storage that
claims 1,000 elements, and a storage that claims 12 GiB; a pickle that inflates past its cap;
a legacy storage claiming 2^39 elements in a short file; a pickle opcode claiming 2^40 bytes;
one tensor referenced 100,000 times and a 60-level DAG of shared lists (rebuilt once each, not
2^60 times); 40 dimensions; a negative element count; a 100,000-digit integer. (A config far
larger than its file is in test_official.py, JSON booleans sent to alae-serve in
test_export.py.)
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import BIN, torch_writer
from helpers.torch_writer import RawTensor, crafted_pickle, write_legacy, write_zip_entries

from alae_tf.official.torch_file import DEFAULT_MAX_BYTES, TorchFileError, read_torch_file

pytestmark = [pytest.mark.slow, pytest.mark.system]  # child processes
REFERENCE = os.path.join(os.path.dirname(__file__), "data", "reference")
CONFIG = os.path.join(REFERENCE, "style32", "config.yaml")
CAP = 1 << 30  # address space of each child
PEAK_LIMIT_MB = 200  # resident memory each case may reach (measured: 29-109 MB)


def _zip(path, body, storages=()):
    """A zip-layout file; ``storages`` is a list of (key, bytes, stated size, deflated?)."""
    entries = [("archive/data.pkl", body, len(body), False),
               ("archive/byteorder", b"little", 6, False)]
    entries += [(f"archive/data/{key}", data, size, deflated)
                for key, data, size, deflated in storages]
    write_zip_entries(path, entries)


def _float_tensor(size, stride, numel, key="0", offset=0):
    return RawTensor(key, size, stride, offset=offset, numel=numel)


def _cases(root):
    """{name: (file, words its one line must hold)}."""
    cases = {}

    def case(name, words):
        path = os.path.join(root, f"{name}.pth")
        cases[name] = (path, words)
        return path

    # 200,000 nested lists: EMPTY_LIST pushed 200,000 times, each APPENDed to the one below.
    _zip(case("deep", "nested more than 100 levels deep"),
         b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".")
    # Stride 0: one float viewed as 10^10 (37 GiB as float32 if copied out).
    _zip(case("stride0", "more elements than the storage holds"),
         crafted_pickle({"model": {"w": _float_tensor((100_000, 100_000), (0, 0), 1)}}),
         [("0", np.zeros(1, "<f4").tobytes(), 4, False)])
    # A deflate bomb behind a storage of 1,000 floats: only 4,000 bytes are inflated, and then
    # the file is what it is, a dict that is no ALAE checkpoint.
    bomb = torch_writer.deflated_zeros(7 << 29)  # 3.5 GiB of zeros in 3.5 MB
    _zip(case("zip_bomb", "not an ALAE checkpoint"),
         crafted_pickle({"model": {"w": _float_tensor((1000,), (1,), 1000)}}),
         [("0", bomb, 7 << 29, True)])
    # The same entry behind a storage that claims 3 x 2^30 floats (12 GiB).
    _zip(case("zip_claims_12gib", "past the reader's limit"),
         crafted_pickle({"model": {"w": _float_tensor((3 << 30,), (1,), 3 << 30)}}),
         [("0", bomb, 7 << 29, True)])
    # data.pkl inflating to 128 MB (its cap is 64 MB); no CRC, but the reader stops first.
    write_zip_entries(case("pickle_bomb", "inflates to more than 64 MB"),
                      [("archive/data.pkl", torch_writer.deflated_zeros(1 << 27), 1 << 27, True)])
    # Legacy: a storage that claims 2^39 elements, followed by 100 bytes.
    write_legacy(case("legacy_claim", "ends early (truncated download?): storage 0 claims "
                                      "549,755,813,888 elements"),
                 crafted_pickle({"model": {"w": _float_tensor((4,), (1,), 4)}}, legacy=True),
                 {"0": (1 << 39, bytes(100))})
    # Legacy: BINBYTES8 claiming 2^40 bytes of a 20-byte rest.
    write_legacy(case("binbytes8", "ends early"),
                 b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + bytes(20), {})
    # One 1 MB tensor referenced 100,000 times (the pickle's memo): 100 GB if each were copied.
    shared = _float_tensor((1 << 18,), (1,), 1 << 18)
    write_legacy(case("shared_refs", "not an ALAE checkpoint"),
                 crafted_pickle({"model": {"w": [shared] * 100_000}}, legacy=True),
                 {"0": (1 << 18, bytes(1 << 20))})
    # A 60-level DAG, each list holding the one below twice: 2^60 paths, 61 lists.
    dag = [_float_tensor((4,), (1,), 4)]
    for _ in range(60):
        dag = [dag, dag]
    write_legacy(case("dag", "not an ALAE checkpoint"),
                 crafted_pickle({"model": dag}, legacy=True), {"0": (4, bytes(16))})
    _zip(case("dims", "40 dimensions"),
         crafted_pickle({"model": {"w": _float_tensor((1,) * 40, (1,) * 40, 1)}}),
         [("0", bytes(4), 4, False)])
    _zip(case("negative_numel", "malformed size"),
         crafted_pickle({"model": {"w": _float_tensor((1,), (1,), -5)}}),
         [("0", bytes(4), 4, False)])
    # A text LONG opcode of 100,000 digits (int() of it is quadratic; Python refuses it).
    _zip(case("huge_int", "cannot be unpickled"), b"L" + b"7" * 100_000 + b"L\n.")
    return cases


def test_hostile_files_get_one_line_exit_2_and_bounded_memory(tmp_path):
    cases = _cases(str(tmp_path))
    report = []
    for name, (path, words) in cases.items():
        run_dir = str(tmp_path / f"run_{name}")
        code, err, peak_mb, seconds = _run_capped(path, run_dir)
        report.append(f"{name}: exit {code}, peak RSS {peak_mb:.0f} MB, {seconds:.2f} s")
        assert code == 2, (name, err[-2000:])
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("alae-import: error: "), (
            name, err[-2000:])
        assert f"{os.path.basename(path)}: " in lines[0], (name, lines[0])  # the file named
        assert words in lines[0], (name, lines[0])
        assert "Traceback" not in err and not os.path.exists(run_dir), name
        assert peak_mb < PEAK_LIMIT_MB, (name, peak_mb)
    print("\n".join(report))


# Runs a command under an address-space cap and prints its peak resident memory in kB. The
# command is a child of this small process, not of the test's: a forked child counts the
# memory of the process it was forked from in its own peak (even after exec).
_MEASURE = """
import os, resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run_capped(path, run_dir, *flags):
    """(exit code, stderr, peak RSS in MB, seconds) of alae-import in a child process whose
    address space is capped; the peak is the child's own (``os.wait4``)."""
    import time

    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(CAP), str(BIN / "alae-import"), path, "--config",
         CONFIG, "--run-dir", run_dir, *flags], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    peak_kb = int(result.stdout.strip().splitlines()[-1])
    return result.returncode, result.stderr, peak_kb / 1024, time.perf_counter() - start


def test_the_reader_limit_is_a_setting_and_alae_import_names_its_flag(tmp_path):
    legacy = os.path.join(REFERENCE, "style32", "model_legacy.pth")
    size = os.path.getsize(legacy)
    with pytest.raises(TorchFileError, match="past the reader's limit of 1,000 bytes") as e:
        read_torch_file(legacy, max_bytes=1000)
    assert e.value.setting == "max_bytes"
    assert DEFAULT_MAX_BYTES >= 4 * 435_000_000  # several times the largest published file
    code, err, _, _ = _run_capped(legacy, str(tmp_path / "run"), "--max-checkpoint-mb", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.strip().endswith("; --max-checkpoint-mb raises it"), err
    assert size > 1 << 20 and not (tmp_path / "run").exists()
