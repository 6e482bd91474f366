#!/usr/bin/python3
"""Regenerates the small hand-built ONNX models for the runtime's edge cases.

    /usr/bin/python3 internal/formats/onnx/testdata/gen_edge.py

Needs Debian's python3-onnx. Each model is built node by node with
onnx.helper, so the files are tiny and their behaviour is known by
construction (the Go tests compute the expected outputs themselves):

    types.onnx       one Identity per OIP datatype ONNX has (in_<T> -> out_<T>),
                     every input [-1, 2] so empty batches can be sent
    noinputs.onnx    no inputs: Constant outputs, one 2x2 FLOAT and one 0-d INT64
    scalar.onnx      0-d FLOAT x -> 0-d FLOAT y = 2x, and FP16 h -> FLOAT f = float(h)
    seqout.onnx      x -> y = x, and a sequence output (not servable, left out)
    anyrank.onnx     x -> y = x, both declared without a shape (any rank)
    slow.onnx        a Loop of 2^62 iterations: runs until cancelled
    tree.onnx        a binary ai.onnx.ml TreeEnsembleClassifier with weights for
                     both classes (ONNX Runtime's label output is wrong for it)
    rowsplit.onnx    x [-1, 6] -> y = x reshaped to [-1, 3], twice the rows:
                     an output declared [-1, 3] whose first dimension is not
                     the batch
"""
import os

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))

TYPES = {
    "BOOL": TensorProto.BOOL, "UINT8": TensorProto.UINT8, "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32, "UINT64": TensorProto.UINT64, "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16, "INT32": TensorProto.INT32, "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16, "BF16": TensorProto.BFLOAT16, "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE, "BYTES": TensorProto.STRING,
}


def save(name, graph, opsets=(("", 17),), check=True):
    model = helper.make_model(graph, producer_name="tide-gen-edge",
                              opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name + ".onnx"))


def types_model():
    nodes, inputs, outputs = [], [], []
    for name, t in TYPES.items():
        inputs.append(helper.make_tensor_value_info("in_" + name, t, ["batch", 2]))
        outputs.append(helper.make_tensor_value_info("out_" + name, t, ["batch", 2]))
        nodes.append(helper.make_node("Identity", ["in_" + name], ["out_" + name]))
    save("types", helper.make_graph(nodes, "types", inputs, outputs))


def noinputs_model():
    nodes = [
        helper.make_node("Constant", [], ["matrix"], value=helper.make_tensor(
            "m", TensorProto.FLOAT, [2, 2], [1.5, -2.0, 3.25, 4.0])),
        helper.make_node("Constant", [], ["count"], value=helper.make_tensor(
            "c", TensorProto.INT64, [], [42])),
    ]
    outputs = [helper.make_tensor_value_info("matrix", TensorProto.FLOAT, [2, 2]),
               helper.make_tensor_value_info("count", TensorProto.INT64, [])]
    save("noinputs", helper.make_graph(nodes, "noinputs", [], outputs))


def scalar_model():
    nodes = [
        helper.make_node("Constant", [], ["two"], value=helper.make_tensor("t", TensorProto.FLOAT, [], [2.0])),
        helper.make_node("Mul", ["x", "two"], ["y"]),
        helper.make_node("Cast", ["h"], ["f"], to=TensorProto.FLOAT),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, []),
              helper.make_tensor_value_info("h", TensorProto.FLOAT16, [])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, []),
               helper.make_tensor_value_info("f", TensorProto.FLOAT, [])]
    save("scalar", helper.make_graph(nodes, "scalar", inputs, outputs))


def seqout_model():
    nodes = [helper.make_node("Identity", ["x"], ["y"]),
             helper.make_node("SequenceConstruct", ["x", "x"], ["seq"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
               helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, ["batch", 3])]
    save("seqout", helper.make_graph(nodes, "seqout", inputs, outputs))


def anyrank_model():
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT32, None)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.INT32, None)]
    # onnx 1.12's checker wants every graph input shaped; ONNX Runtime and
    # exporters (tf2onnx) do not.
    save("anyrank", helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "anyrank", inputs, outputs),
         check=False)


def slow_model():
    # Each iteration adds 1 to a counter; no one waits for 2^62 of them, so the
    # only way out is ONNX Runtime's terminate flag.
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    nodes = [
        helper.make_node("Constant", [], ["trips"], value=helper.make_tensor("n", TensorProto.INT64, [], [1 << 62])),
        helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
        helper.make_node("Loop", ["trips", "cond", "start"], ["total"], body=body),
    ]
    inputs = [helper.make_tensor_value_info("start", TensorProto.FLOAT, [1])]
    outputs = [helper.make_tensor_value_info("total", TensorProto.FLOAT, [1])]
    save("slow", helper.make_graph(nodes, "slow", inputs, outputs))


def tree_model():
    # Two stumps on feature 0 and feature 1. Each leaf gives weights to both
    # classes, as skl2onnx writes binary forests.
    #   tree 0: x0 <= 0.5 ? (0.9, 0.1) : (0.2, 0.8)
    #   tree 1: x1 <= 1.5 ? (0.7, 0.3) : (0.4, 0.6)
    # Probabilities are the averages (post_transform NONE, weights / 2).
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
        classlabels_int64s=[0, 1],
        nodes_treeids=[0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 0, 1, 2],
        nodes_featureids=[0, 0, 0, 1, 1, 1],
        nodes_values=[0.5, 0.0, 0.0, 1.5, 0.0, 0.0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 0, 0, 2, 0, 0],
        nodes_hitrates=[1.0] * 6,
        nodes_missing_value_tracks_true=[0] * 6,
        class_treeids=[0, 0, 0, 0, 1, 1, 1, 1],
        class_nodeids=[1, 1, 2, 2, 1, 1, 2, 2],
        class_ids=[0, 1, 0, 1, 0, 1, 0, 1],
        class_weights=[0.45, 0.05, 0.1, 0.4, 0.35, 0.15, 0.2, 0.3],
        post_transform="NONE")
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])]
    outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
               helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])]
    save("tree", helper.make_graph([node], "tree", inputs, outputs),
         opsets=(("", 17), ("ai.onnx.ml", 3)))


def rowsplit_model():
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 3])
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])]
    save("rowsplit", helper.make_graph(nodes, "rowsplit", inputs, outputs, initializer=[shape]))

if __name__ == "__main__":
    types_model()
    noinputs_model()
    scalar_model()
    seqout_model()
    anyrank_model()
    slow_model()
    tree_model()
    rowsplit_model()
