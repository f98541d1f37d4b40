# The Python part of a one-tile batch alone: decode_batch_pool() with the submitter stubbed out
# (no submit, no wait), 7 rounds of 3000 calls, median per call. For A/B runs of two checkouts
# on one machine: PYTHONPATH=<a package tree> python3 tools/gpu_device/python_only.py, alternated.
import statistics, time
import dsd.daemon.gpu.decoder as decoder_module
from dsd.bench.gpu import _one_tile_stream
from dsd.daemon.gpu import GpuDecoder

d = GpuDecoder()
tiny = [(_one_tile_stream(), 1)]
for _ in range(50):
    assert d.decode_batch_pool(tiny) == [None]


class Stub:
    def run(self, *a):
        return (0, 0, 1, True, 1000)


real, d._submitter = d._submitter, Stub()
rounds = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(3000):
        d.decode_batch_pool(tiny)
    rounds.append((time.perf_counter() - t) / 3000 * 1e6)
print(f"{decoder_module.__file__}: python_only_us median {statistics.median(rounds):.2f} "
      f"rounds {[round(x, 2) for x in rounds]}")
d._submitter = real
d.close()
