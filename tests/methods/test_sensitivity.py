"""The per-layer INT8 sensitivity scan finds the layer whose input range an outlier stretches."""
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from bgeq_utils.inputs import data
from bgeq_utils.methods import sensitivity


@pytest.fixture(scope="module")
def tiny(reference):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=reference.tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                     num_hidden_layers=2, num_attention_heads=2)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    return model, AutoTokenizer.from_pretrained(reference.folder)


def test_graph_node_keeps_index_dots():
    assert sensitivity.graph_node("encoder.layer.3.output.dense") == "/model/encoder/layer.3/output/dense/MatMul"
    assert sensitivity.graph_node("encoder.layer.11.attention.self.query") == \
        "/model/encoder/layer.11/attention/self/query/MatMul"


def test_an_outlier_that_stretches_a_range_makes_its_layer_the_worst(tiny):
    model, tok = tiny
    texts = data.sentence_texts(8)
    with torch.no_grad():
        # channel 0 of layer 1's FFN is huge but the next layer ignores it: only the range is stretched
        model.encoder.layer[1].intermediate.dense.bias[0] = 500.0
        model.encoder.layer[1].output.dense.weight[:, 0] = 0.0
    scan = sensitivity.linear_sensitivity(model, tok, texts, texts, max_length=32)
    assert len(scan) == 12 and set(scan["kind"]) >= {"output.dense", "intermediate.dense", "attention.self.query"}
    assert scan["layer"][0] == "encoder.layer.1.output.dense"
    assert scan["relative_error"][0] > 10 * scan["relative_error"][1]
    assert scan["input_max"][0] >= 499
    assert sensitivity.most_sensitive(scan, 2) == list(scan["layer"][:2])
    assert sensitivity.most_sensitive(scan, 0) == []


def test_scan_refuses_bad_input(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="calibration texts"):
        sensitivity.linear_sensitivity(model, tok, [], ["a"])
    with pytest.raises(ValueError, match="k=-1"):
        sensitivity.most_sensitive(None, -1)
