"""BERT against the reference `transformers` implementation on tiny random models."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

import loom
from tests.helpers import (
    assert_close,
    check_head_mask_equals_pruning,
    check_parity,
    check_save_load,
    max_diff,
)

HEADS = [
    "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
    "BertForTokenClassification", "BertForQuestionAnswering", "BertForPreTraining",
]
SHAPES = {
    "h32-l2-a4": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "h24-l3-a3-tanhgelu": dict(hidden_size=24, num_hidden_layers=3, num_attention_heads=3,
                               intermediate_size=20, hidden_act="gelu_new", type_vocab_size=3),
    "h16-l1-a1-relu": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                           intermediate_size=64, hidden_act="relu", layer_norm_eps=1e-5),
}
VOCAB = 101


def hf_config(**kw):
    base = dict(vocab_size=VOCAB, max_position_embeddings=40, attn_implementation="eager", num_labels=3)
    base.update(kw)
    return transformers.BertConfig(**base)


def make_pair(tmp_path, name: str, seed: int = 0, **cfg):
    torch.manual_seed(seed)
    if name == "BertForQuestionAnswering":
        cfg.setdefault("num_labels", 2)
    hf = getattr(transformers, name)(hf_config(**cfg)).eval()
    folder = tmp_path / f"hf-{name}"
    hf.save_pretrained(folder)
    return getattr(loom, name).from_pretrained(folder), hf, folder


def batch(B=3, T=13, seed=1, pad=True, type_vocab=2):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    if pad:  # ragged lengths: padding must not change the real tokens' outputs
        for i in range(1, B):
            mask[i, T - 3 * i:] = 0
            ids[i, T - 3 * i:] = 0
    types = torch.randint(0, type_vocab, (B, T), generator=g)
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", HEADS)
def test_parity_every_head(tmp_path, name, shape):
    ours, ref, _ = make_pair(tmp_path, name, **SHAPES[shape])
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    check_parity(ours, ref, batch(type_vocab=SHAPES[shape].get("type_vocab_size", 2)))


def test_parity_without_mask_and_with_position_ids_and_embeds(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "BertModel", **SHAPES["h32-l2-a4"])
    inputs = batch(pad=False)
    inputs.pop("attention_mask")
    check_parity(ours, ref, inputs)
    pos = torch.arange(5, 5 + 13).expand(3, -1)
    check_parity(ours, ref, {**inputs, "position_ids": pos}, fields=["last_hidden_state"])
    embeds = torch.randn(2, 7, 32)
    with torch.no_grad():
        a = ours(inputs_embeds=embeds).last_hidden_state
        b = ref(inputs_embeds=embeds).last_hidden_state
    assert_close(a, b)


def test_padding_invariance(tmp_path):
    ours, _, _ = make_pair(tmp_path, "BertModel", **SHAPES["h32-l2-a4"])
    inputs = batch(B=3, T=13)
    with torch.no_grad():
        full = ours(**inputs).last_hidden_state
        for i in range(3):
            n = int(inputs["attention_mask"][i].sum())
            alone = ours(input_ids=inputs["input_ids"][i:i + 1, :n],
                         token_type_ids=inputs["token_type_ids"][i:i + 1, :n]).last_hidden_state
            assert_close(full[i:i + 1, :n], alone, what=f"row {i}")


@pytest.mark.parametrize(
    "name,labels",
    [
        ("BertForSequenceClassification", lambda B, T: {"labels": torch.tensor([0, 2, 1])}),
        ("BertForTokenClassification", lambda B, T: {"labels": torch.randint(0, 3, (B, T)).index_fill_(1, torch.tensor([0]), -100)}),
        ("BertForQuestionAnswering", lambda B, T: {"start_positions": torch.tensor([1, 4, 50]),
                                                  "end_positions": torch.tensor([3, 4, 2])}),
        ("BertForMaskedLM", lambda B, T: {"labels": torch.randint(0, VOCAB, (B, T)).index_fill_(1, torch.tensor([2, 5]), -100)}),
        ("BertForPreTraining", lambda B, T: {"labels": torch.randint(0, VOCAB, (B, T)),
                                            "next_sentence_label": torch.tensor([0, 1, 1])}),
    ],
)
def test_losses_and_gradients_match(tmp_path, name, labels):
    ours, ref, _ = make_pair(tmp_path, name, **SHAPES["h32-l2-a4"])
    inputs = {**batch(), **labels(3, 13)}
    a, b = ours(**inputs).loss, ref(**inputs).loss
    assert_close(a, b, what="loss")
    a.backward()
    b.backward()
    g_ours = dict(ours.named_parameters())
    for pname, p in ref.named_parameters():
        if p.grad is not None and pname in g_ours:
            assert_close(g_ours[pname].grad, p.grad, 1e-5, pname)


@pytest.mark.parametrize("problem_type,labels", [
    ("regression", torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, 0.0], [0.1, 0.2, 0.3]])),
    ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])),
    ("single_label_classification", torch.tensor([2, 0, 1])),
])
def test_sequence_classification_problem_types(tmp_path, problem_type, labels):
    ours, ref, _ = make_pair(tmp_path, "BertForSequenceClassification", problem_type=problem_type,
                             **SHAPES["h32-l2-a4"])
    inputs = {**batch(), "labels": labels}
    with torch.no_grad():
        assert_close(ours(**inputs).loss, ref(**inputs).loss, what=problem_type)


def test_single_label_regression_inferred(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "BertForSequenceClassification", num_labels=1, **SHAPES["h32-l2-a4"])
    inputs = {**batch(), "labels": torch.tensor([0.3, -2.0, 1.5])}
    with torch.no_grad():
        assert_close(ours(**inputs).loss, ref(**inputs).loss)
    assert ours.config.problem_type == "regression"


def test_head_mask_matches_scaled_values_in_reference(tmp_path):
    """head_mask multiplies the probabilities of a head; the reference ignores head_mask, so the
    expectation is built in it by scaling that head's value projection by the same factor."""
    cfg = SHAPES["h32-l2-a4"]
    ours, ref, _ = make_pair(tmp_path, "BertForSequenceClassification", **cfg)
    torch.manual_seed(3)
    mask = torch.rand(2, 4)
    mask[0, 1] = 0.0
    D = 32 // 4
    with torch.no_grad():
        for layer in range(2):
            value = ref.bert.encoder.layer[layer].attention.self.value
            for h in range(4):
                value.weight[h * D:(h + 1) * D] *= mask[layer, h]
                value.bias[h * D:(h + 1) * D] *= mask[layer, h]
        inputs = batch()
        out = ours(**inputs, head_mask=mask, output_attentions=True, output_hidden_states=True)
        exp = ref(**inputs, output_hidden_states=True)
    assert_close(out.logits, exp.logits, what="logits")
    assert_close(out.hidden_states, exp.hidden_states, what="hidden_states")
    assert out.attentions[0][:, 1].abs().max() == 0  # the silenced head's weights are zero
    # A (H,) mask applies to every layer.
    with torch.no_grad():
        a = ours(**inputs, head_mask=torch.tensor([1.0, 0.0, 1.0, 1.0])).logits
        b = ours(**inputs, head_mask=torch.tensor([[1.0, 0.0, 1.0, 1.0]] * 2)).logits
        ones = ours(**inputs, head_mask=torch.ones(4)).logits
        plain = ours(**inputs).logits
    assert max_diff(a, b) == 0.0
    assert_close(ones, plain)
    with pytest.raises(loom.InputError, match="head_mask"):
        ours(**inputs, head_mask=torch.ones(3))


def test_pruning_equals_zero_head_mask_and_survives_save(tmp_path):
    _, _, folder = make_pair(tmp_path, "BertForSequenceClassification", **SHAPES["h32-l2-a4"])
    inputs = batch()
    factory = lambda: loom.BertForSequenceClassification.from_pretrained(folder)  # noqa: E731
    check_head_mask_equals_pruning(factory, inputs, layer=1, heads=[0, 2], num_layers=2, num_heads=4)
    model = factory()
    model.prune_heads({0: [3], 1: [0, 2]})
    model.prune_heads({1: [2, 1]})  # 2 again is a no-op; original numbering throughout
    assert model.config.pruned_heads == {0: [3], 1: [0, 1, 2]}
    assert model.bert.encoder.layer[1].attention.self.query.out_features == 8
    mask = torch.ones(2, 4)
    mask[0, 3] = 0
    mask[1, :3] = 0
    with torch.no_grad():
        expected = factory()(**inputs, head_mask=mask).logits
        got = model(**inputs).logits
        attn = model(**inputs, output_attentions=True).attentions
        # A full-size head mask still works on the pruned model (pruned heads dropped from it).
        again = model(**inputs, head_mask=torch.ones(2, 4)).logits
    assert_close(got, expected, what="pruned vs masked")
    assert max_diff(again, got) == 0.0
    assert attn[0].shape[1] == 3 and attn[1].shape[1] == 1
    reloaded = check_save_load(model, tmp_path, inputs)
    assert reloaded.config.pruned_heads == {0: [3], 1: [0, 1, 2]}
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["pruned_heads"] == {"0": [3], "1": [0, 1, 2]}


@pytest.mark.parametrize("name", HEADS)
def test_loom_saves_what_transformers_loads(tmp_path, name):
    ours, ref, _ = make_pair(tmp_path, name, **SHAPES["h24-l3-a3-tanhgelu"])
    out = tmp_path / "loom-saved"
    ours.save_pretrained(out)
    back = getattr(transformers, name).from_pretrained(out, attn_implementation="eager").eval()
    inputs = batch(type_vocab=3)
    check_parity(ours, back, inputs)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [name] and config["model_type"] == "bert"


def test_sharded_save_loads_in_both(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "BertForMaskedLM", **SHAPES["h32-l2-a4"])
    out = tmp_path / "sharded"
    files = ours.save_pretrained(out, max_shard_size="20KB")
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    assert len(shards) > 2 and "model.safetensors.index.json" in files
    assert not (out / "model.safetensors").exists()
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    inputs = batch()
    check_save_load(ours, tmp_path, inputs, max_shard_size="20KB")
    again = loom.BertForMaskedLM.from_pretrained(out)
    with torch.no_grad():
        assert max_diff(again(**inputs).logits, ours(**inputs).logits) == 0.0
    back = transformers.BertForMaskedLM.from_pretrained(out, attn_implementation="eager").eval()
    check_parity(ours, back, inputs, hidden_and_attentions=False)
    # Saving again unsharded into the same folder removes the old shards.
    ours.save_pretrained(out)
    assert not list(out.glob("model-*.safetensors")) and (out / "model.safetensors").exists()
    assert not (out / "model.safetensors.index.json").exists()


def test_base_from_head_checkpoint_and_head_from_base(tmp_path):
    _, ref_mlm, mlm_folder = make_pair(tmp_path, "BertForMaskedLM", **SHAPES["h32-l2-a4"])
    base = loom.BertModel.from_pretrained(mlm_folder)
    ref_base = transformers.BertModel.from_pretrained(mlm_folder, attn_implementation="eager").eval()
    assert "cls.predictions.transform.dense.weight" in base.loading_report.unexpected_keys
    inputs = batch()
    with torch.no_grad():
        assert_close(base(**inputs).last_hidden_state, ref_base(**inputs).last_hidden_state)
        assert_close(base(**inputs).last_hidden_state, ref_mlm.bert(**inputs).last_hidden_state)
    _, ref, base_folder = make_pair(tmp_path, "BertModel", **SHAPES["h32-l2-a4"])
    clf = loom.BertForSequenceClassification.from_pretrained(base_folder, num_labels=5)
    assert sorted(clf.loading_report.missing_keys) == ["classifier.bias", "classifier.weight"]
    assert clf.classifier.weight.shape == (5, 32) and clf.classifier.bias.abs().max() == 0
    assert 0.005 < clf.classifier.weight.std().item() < 0.04  # normal(0, initializer_range=0.02)
    with torch.no_grad():
        assert_close(clf.bert(**inputs).last_hidden_state, ref(**inputs).last_hidden_state)


def test_ignore_mismatched_sizes_reinitialises_head(tmp_path):
    _, _, folder = make_pair(tmp_path, "BertForSequenceClassification", **SHAPES["h32-l2-a4"])
    with pytest.raises(loom.ShapeMismatchError, match=r"classifier\.(weight|bias)'.*\(3,?( 32)?\).*\(7,?( 32)?\)"):
        loom.BertForSequenceClassification.from_pretrained(folder, num_labels=7)
    model = loom.BertForSequenceClassification.from_pretrained(folder, num_labels=7, ignore_mismatched_sizes=True)
    assert model.classifier.weight.shape == (7, 32)
    assert ("classifier.weight", (3, 32), (7, 32)) in model.loading_report.mismatched_keys


def test_bf16_and_auto_dtype(tmp_path):
    ours, _, folder = make_pair(tmp_path, "BertForMaskedLM", **SHAPES["h32-l2-a4"])
    ref16 = transformers.BertForMaskedLM.from_pretrained(folder, dtype=torch.bfloat16,
                                                         attn_implementation="eager").eval()
    ours16 = loom.BertForMaskedLM.from_pretrained(folder, dtype=torch.bfloat16)
    assert ours16.dtype == torch.bfloat16 and ours16.config.dtype == "bfloat16"
    inputs = batch()
    with torch.no_grad():
        a, b, full = ours16(**inputs).logits, ref16(**inputs).logits, ours(**inputs).logits
    assert a.dtype == torch.bfloat16
    assert max_diff(a, b) <= 0.05 and max_diff(a, full) <= 0.1
    ours16.save_pretrained(tmp_path / "bf16")
    auto = loom.BertForMaskedLM.from_pretrained(tmp_path / "bf16", dtype="auto")
    assert auto.dtype == torch.bfloat16
    assert loom.BertForMaskedLM.from_pretrained(tmp_path / "bf16").dtype == torch.float32


def test_tied_embeddings_and_resize(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "BertForMaskedLM", **SHAPES["h32-l2-a4"])
    emb = ours.get_input_embeddings()
    assert ours.get_output_embeddings().weight is emb.weight
    old = emb.weight.detach().clone()
    n_params = ours.num_parameters()
    ours.resize_token_embeddings(VOCAB + 5, pad_to_multiple_of=8)
    n = 112  # 106 rounded up to a multiple of 8
    new = ours.get_input_embeddings().weight
    assert new.shape == (n, 32) and ours.config.vocab_size == n
    assert ours.get_output_embeddings().weight is new
    assert ours.get_output_embeddings().bias.shape == (n,)
    assert max_diff(new[:VOCAB], old) == 0.0
    assert_close(new[VOCAB:], old.mean(0).expand(n - VOCAB, -1))
    assert ours.num_parameters() == n_params + (n - VOCAB) * 33
    inputs = batch()
    inputs["input_ids"][0, 0] = n - 1
    with torch.no_grad():
        assert ours(**inputs).logits.shape == (3, 13, n)
    check_save_load(ours, tmp_path, inputs)
    back = transformers.BertForMaskedLM.from_pretrained(tmp_path / "saved", attn_implementation="eager").eval()
    check_parity(ours, back, inputs, hidden_and_attentions=False)
    ours.resize_token_embeddings(50)  # shrinking keeps the first rows
    assert ours.get_input_embeddings().weight.shape == (50, 32)
    assert max_diff(ours.get_input_embeddings().weight, old[:50]) == 0.0


def test_untied_output_embeddings(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "BertForMaskedLM", tie_word_embeddings=False, **SHAPES["h32-l2-a4"])
    assert ours.get_output_embeddings().weight is not ours.get_input_embeddings().weight
    check_parity(ours, ref, batch(), hidden_and_attentions=False)
    ours.resize_token_embeddings(VOCAB + 3)
    assert ours.get_output_embeddings().weight.shape == (VOCAB + 3, 32)


def test_auto_classes_pick_the_task(tmp_path):
    _, _, folder = make_pair(tmp_path, "BertForTokenClassification", **SHAPES["h32-l2-a4"])
    assert type(loom.AutoModel.from_pretrained(folder)) is loom.BertModel
    assert type(loom.AutoModelForTokenClassification.from_pretrained(folder)) is loom.BertForTokenClassification
    m = loom.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=4, ignore_mismatched_sizes=True)
    assert type(m) is loom.BertForSequenceClassification and m.config.num_labels == 4
    cfg = loom.AutoConfig.from_pretrained(folder)
    assert isinstance(cfg, loom.BertConfig) and cfg.hidden_size == 32
    assert type(loom.AutoModelForMaskedLM.from_config(cfg)) is loom.BertForMaskedLM


def test_model_built_from_config_is_initialised_and_trains(tmp_path):
    torch.manual_seed(0)
    cfg = loom.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, num_labels=2)
    model = loom.BertForSequenceClassification(cfg)
    assert not any(p.is_meta for p in model.parameters())
    assert model.bert.embeddings.LayerNorm.weight.eq(1).all()
    assert model.get_input_embeddings().weight[0].abs().max() == 0  # padding row
    ids = torch.randint(1, 50, (8, 6))
    labels = (ids[:, 0] > 25).long()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(30):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5
