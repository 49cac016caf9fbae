"""Process memory of an embedded runtime: RSS after `import graphopt.runtime`, and the peak after
loading an artifact and running it 5 times, in this fresh process (Linux /proc/self/status).

    python benchmarks/runtime_rss.py runtime-only ART     # what a service gets
    python benchmarks/runtime_rss.py tvm-first ART        # tvm imported first: the compiler library
                                                          # is loaded, as the runtime always did before
"""

import sys, numpy as np
pre = sys.argv[1] == "tvm-first"
if pre:
    import tvm  # noqa: F401  (what the runtime's import did before: the compiler library)
import graphopt.runtime
def kb(key): return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) // 1024
after_import = kb("VmRSS")
sess = graphopt.runtime.load(sys.argv[2])
x = {i["name"]: np.random.default_rng(0).standard_normal(i["shape"]).astype(i["dtype"]) for i in sess.inputs}
for _ in range(5): sess.run(x)
print(f"{sys.argv[1]}: import {after_import} MB, peak after load + 5 runs {kb('VmHWM')} MB, tvm mode {sess.tvm_mode}")
