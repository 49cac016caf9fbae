"""oneDNN as a second kernel library: per kernel, the tuner times graphopt's TVM schedule
against a oneDNN primitive and the tuning database records the faster.

    match.py      which legalized kernels oneDNN computes (conv2d NCHW, matmul; bias/add/relu)
    extern.py     such a kernel as one extern call, same parameters (the memory plan is unchanged)
    shim.cc       the C++ the extern calls: primitives cached per thread and shape, TBB arena
    library.py    finding oneDNN (the optional extra `graphopt[onednn]`), building and linking the shim
    choose.py     compile time: TVM, oneDNN, or the database's choice per kernel
    portfolio.py  tuning time: time both, check outputs, record the choice
"""
