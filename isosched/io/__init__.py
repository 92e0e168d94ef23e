"""File formats: graph, hardware and ONNX readers and writers (the only modules that touch files)."""
