"""A real pipeline on scikit-learn's bundled digits: dataset -> preprocess -> model -> compile -> evaluate.

    data.py        the dataset files (float64 as shipped, or a uint8 re-encoding)
    steps.py       the preprocessing component (a Python callable with a static check)
    train.py       a seeded numpy MLP / softmax regression, exported to ONNX (IR 10, opset 17)
    scenario.py    two users on two branches (preprocessing vs model/compile), then merge
"""
