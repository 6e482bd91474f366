#!/usr/bin/python3
"""Regenerates the torch-exported ONNX fixtures and their reference outputs.

    /usr/bin/python3 internal/formats/onnx/testdata/gen_torch.py

Needs Debian's python3-torch (1.13) and python3-onnx. Writes, next to this script:

    mlp.onnx, mlp.json   an MLP 32-64-64-10 (ReLU), opset 13
    mlp256.onnx, mlp256.json
                         an MLP 64-256-256-256-10 (ReLU), opset 13: three hidden
                         layers of 256 units, ~150k weights, a size where the
                         model's own work is not lost in per-call overhead (the
                         batching benchmarks use both MLPs)
    cnn.onnx, cnn.json   a small CNN on 1x12x12 images (Conv, ReLU, MaxPool,
                         Conv, Flatten, Linear), opset 17

Both are exported with a dynamic batch dimension ("batch"). Each JSON file holds
the input and output names, and cases of several batch sizes: the input as a
flat list of float32 values with its shape, and torch's output for it, written
with repr() so the float32 values survive the trip exactly.

Weights and inputs come from fixed seeds, so a rerun writes the same files.
"""
import json
import os

import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(32, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class MLP256(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 10))

    def forward(self, x):
        return self.net(x)


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(4, 8, 3), torch.nn.ReLU())
        self.head = torch.nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def export(name, module, sample_shape, opset, batches):
    torch.manual_seed(7)
    model = module()
    model.eval()
    x0 = torch.randn(2, *sample_shape)
    path = os.path.join(HERE, name + ".onnx")
    torch.onnx.export(model, x0, path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=opset, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))

    cases = []
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for b in batches:
            x = torch.randn(b, *sample_shape, generator=gen)
            y = model(x)
            cases.append({
                "shape": list(x.shape),
                "input": [float(v) for v in x.flatten().tolist()],
                "output_shape": list(y.shape),
                "output": [float(v) for v in y.flatten().tolist()],
            })
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({"input": "input", "output": "logits", "opset": opset,
                   "torch": torch.__version__, "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    export("mlp", MLP, (32,), 13, [1, 3, 64])
    export("cnn", CNN, (1, 12, 12), 17, [1, 5])
    export("mlp256", MLP256, (64,), 13, [1, 3])
