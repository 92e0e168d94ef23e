"""File formats: graph, hardware and ONNX readers and writers; the only code that touches files."""
