"""ONNX backend conformance: graphopt as an `onnx.backend.base.Backend`, and its fast subset."""
