"""push_to_hub -> from_pretrained through the test Hub: identical outputs, new commits per push,
old commits by oid, one commit per load, config checked before weights, only needed files."""

from __future__ import annotations

import json

import pytest
import torch

import loom
from loom import hub as loom_hub
from tests.hub.conftest import logits, repo_files, tiny_model, tiny_tokenizer


def test_model_tokenizer_config_round_trip(hub, tmp_path):
    model, tokenizer = tiny_model(), tiny_tokenizer(tmp_path / "tok")
    first = model.push_to_hub("acme/tiny")
    second = tokenizer.push_to_hub("acme/tiny", commit_message="add tokenizer")
    config_commit = model.config.push_to_hub("acme/config-only")
    assert first.oid != second.oid and first == first.url
    assert hub.commit_of("acme/tiny").message == "add tokenizer"
    assert hub.commit_of("acme/tiny").parent == first.oid  # one commit per push

    cache = tmp_path / "fresh-cache"
    again = loom.AutoModelForMaskedLM.from_pretrained("acme/tiny", cache_dir=cache)
    tok = loom.AutoTokenizer.from_pretrained("acme/tiny", cache_dir=cache)
    config = loom.AutoConfig.from_pretrained("acme/config-only", cache_dir=cache)
    assert type(again) is loom.BertForMaskedLM
    assert torch.equal(logits(again, tok), logits(model, tokenizer))
    assert tok("the cat sat")["input_ids"] == tokenizer("the cat sat")["input_ids"]
    assert config == model.config and config_commit.oid == hub.commit_of("acme/config-only").oid


def test_model_card_written_once_with_facts(hub, tmp_path):
    model = tiny_model()
    model.push_to_hub("acme/tiny")
    card = hub.commit_of("acme/tiny").files["README.md"].data.decode()
    assert card.startswith("---\nlibrary_name: loom\n")
    assert "pipeline_tag: fill-mask" in card and "- bert" in card
    assert f"| Parameters | {model.num_parameters():,} |" in card
    assert "| Architecture | BertForMaskedLM |" in card and "| Task | masked-lm |" in card
    assert 'AutoModelForMaskedLM.from_pretrained("acme/tiny")' in card
    # A later push keeps the card that is there; a folder's own README.md wins.
    tiny_tokenizer(tmp_path / "tok").push_to_hub("acme/tiny")
    assert hub.commit_of("acme/tiny").files["README.md"].data.decode() == card
    tiny_tokenizer(tmp_path / "tok2").push_to_hub("acme/tok")
    tok_card = hub.commit_of("acme/tok").files["README.md"].data.decode()
    assert "A tokenizer shared with loom" in tok_card and 'AutoTokenizer.from_pretrained("acme/tok")' in tok_card


def test_second_push_is_a_new_commit_and_the_first_still_loads(hub, tmp_path):
    model = tiny_model(seed=0)
    v1 = model.push_to_hub("acme/tiny")
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.add_(1.0)
    v2 = model.push_to_hub("acme/tiny", commit_message="retrained")
    assert v1.oid != v2.oid
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    latest = loom.BertForMaskedLM.from_pretrained("acme/tiny", cache_dir=tmp_path / "c1")
    old = loom.BertForMaskedLM.from_pretrained("acme/tiny", revision=v1.oid, cache_dir=tmp_path / "c2")
    with torch.no_grad():
        assert torch.equal(latest(input_ids=ids).logits, model(input_ids=ids).logits)
        original = tiny_model(seed=0)(input_ids=ids).logits
        assert torch.equal(old(input_ids=ids).logits, original)
        assert not torch.equal(original, latest(input_ids=ids).logits)


def test_push_options_private_branch_pr_and_shards(hub, tmp_path):
    model = tiny_model()
    hub.tokens = {"hf_writer": "write", "hf_reader": "read"}
    model.push_to_hub("acme/tiny", private=True, token="hf_writer")
    assert hub.repos["acme/tiny"].private
    main = hub.commit_of("acme/tiny").oid
    dev = model.push_to_hub("acme/tiny", revision="dev", max_shard_size=20_000, token="hf_writer")
    assert hub.commit_of("acme/tiny").oid == main and hub.commit_of("acme/tiny", "dev").oid == dev.oid
    names = set(hub.commit_of("acme/tiny", "dev").files)
    assert {"model.safetensors.index.json", "model-00001-of-00002.safetensors"} <= names
    assert "model.safetensors" not in names, "a stale single file would win over the shards"
    assert "model.safetensors" in hub.commit_of("acme/tiny").files
    unchanged = model.config.push_to_hub("acme/tiny", token="hf_writer")
    assert unchanged.oid == main, "nothing changed: no new commit"
    proposal = model.config.replace(classifier_dropout=0.3)
    pr = proposal.push_to_hub("acme/tiny", create_pr=True, token="hf_writer")
    assert pr.pr_url.endswith("/acme/tiny/discussions/1") and hub.commit_of("acme/tiny", "refs/pr/1").oid == pr.oid
    assert hub.commit_of("acme/tiny").oid == main
    # Private: the server refuses reads without a token.
    sharded = loom.BertForMaskedLM.from_pretrained("acme/tiny", revision="dev", token="hf_reader",
                                                  cache_dir=tmp_path / "cache")
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        assert torch.equal(sharded(input_ids=ids).logits, model(input_ids=ids).logits)
    with pytest.raises(loom.InputError, match="max_shard_size applies to models"):
        model.config.push_to_hub("acme/tiny", max_shard_size="1MB", token="hf_writer")


def test_one_load_reads_one_commit_while_the_branch_moves(hub, tmp_path):
    model, tokenizer = tiny_model(seed=0), tiny_tokenizer(tmp_path / "tok")
    hub.add_commit("acme/tiny", repo_files(model, tokenizer, tmp_path / "v1"))
    first = hub.commit_of("acme/tiny").oid
    other = tiny_model(seed=1)
    other.config.hidden_dropout_prob = 0.3
    newer = repo_files(other, None, tmp_path / "v2")
    # Right after the Hub names the commit of config.json, main moves to other config and weights.
    hub.after(r"HEAD /acme/tiny/resolve/main/config\.json", lambda s: s.add_commit("acme/tiny", newer))
    rev = loom_hub.pin("acme/tiny")
    loaded = loom.AutoModelForMaskedLM.from_pretrained("acme/tiny", revision=rev, cache_dir=tmp_path / "c")
    tok = loom.AutoTokenizer.from_pretrained("acme/tiny", revision=rev, cache_dir=tmp_path / "c")
    assert rev.commit == first != hub.commit_of("acme/tiny").oid
    assert torch.equal(logits(loaded, tok), logits(model, tokenizer))
    assert loaded.config.hidden_dropout_prob == model.config.hidden_dropout_prob != 0.3
    at_main = [str(r) for r in hub.requests("resolve/main/")]
    assert at_main == ["HEAD /acme/tiny/resolve/main/config.json"], "the rest must be fetched by commit"
    assert len(hub.requests(rf"resolve/{first}/model\.safetensors")) == 1


def test_config_and_architecture_checked_before_any_weight_request(hub, tmp_path):
    files = repo_files(tiny_model(), None, tmp_path)
    config = json.loads(files["config.json"])
    hub.add_commit("acme/unknown", {**files, "config.json": json.dumps({**config, "model_type": "nope"}).encode()})
    with pytest.raises(loom.UnknownModelTypeError, match="nope"):
        loom.AutoModel.from_pretrained("acme/unknown", cache_dir=tmp_path / "c")
    bad = {**config, "hidden_size": 15}
    hub.add_commit("acme/bad", {**files, "config.json": json.dumps(bad).encode()})
    with pytest.raises(loom.ConfigError, match="hidden_size"):
        loom.BertForMaskedLM.from_pretrained("acme/bad", cache_dir=tmp_path / "c")
    with pytest.raises(loom.ConfigError, match="reads model_type 'bert'"):
        loom.BertForMaskedLM.from_pretrained("acme/unknown", cache_dir=tmp_path / "c")
    assert hub.requests(r"config\.json") and not hub.requests(r"safetensors|lfs-cdn")


def test_only_the_needed_weight_files_are_downloaded(hub, tmp_path):
    model = tiny_model()
    files = repo_files(model, None, tmp_path / "a")
    hub.add_commit("acme/both", {**files, "pytorch_model.bin": b"never read"})
    loom.BertForMaskedLM.from_pretrained("acme/both", cache_dir=tmp_path / "c")
    assert not hub.requests(r"pytorch_model")
    model.save_pretrained(tmp_path / "sharded", max_shard_size=20_000)
    shards = {p.name: p.read_bytes() for p in (tmp_path / "sharded").iterdir()}
    stray = "model-00009-of-00009.safetensors"
    hub.add_commit("acme/sharded", {**shards, stray: b"not in the index"})
    again = loom.BertForMaskedLM.from_pretrained("acme/sharded", cache_dir=tmp_path / "c")
    index = json.loads(shards["model.safetensors.index.json"])
    fetched = {r.path.rsplit("/", 1)[1] for r in hub.requests(r"HEAD /acme/sharded/resolve/")}
    assert fetched == {"config.json", "model.safetensors", "model.safetensors.index.json",
                       *index["weight_map"].values()}
    assert stray not in fetched
    ids = torch.tensor([[2, 5, 3]])
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)


def test_every_preprocessor_and_generation_config_pushes_and_loads_back(hub, tmp_path):
    processor = loom.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.5, 0.6])
    processor.push_to_hub("acme/vit-proc")
    assert loom.AutoImageProcessor.from_pretrained("acme/vit-proc", cache_dir=tmp_path).to_dict() == processor.to_dict()
    assert "AutoImageProcessor.from_pretrained" in hub.commit_of("acme/vit-proc").files["README.md"].data.decode()
    from loom.preprocessing.processor import Processor

    combined = Processor(tokenizer=tiny_tokenizer(tmp_path / "tok"), image_processor=processor)
    combined.push_to_hub("acme/proc")
    again = Processor.from_pretrained("acme/proc", cache_dir=tmp_path)
    assert set(again.parts) == {"tokenizer", "image_processor"}
    assert again.parts["image_processor"].to_dict() == processor.to_dict()
    assert again.parts["tokenizer"]("the cat")["input_ids"] == combined.parts["tokenizer"]("the cat")["input_ids"]
    assert "A processor shared with loom" in hub.commit_of("acme/proc").files["README.md"].data.decode()
    generation = loom.GenerationConfig(max_new_tokens=7, do_sample=True, top_k=5)
    generation.push_to_hub("acme/gen")
    assert loom.GenerationConfig.from_pretrained("acme/gen", cache_dir=tmp_path).to_dict() == generation.to_dict()
    assert 'GenerationConfig.from_pretrained("acme/gen")' in hub.commit_of("acme/gen").files["README.md"].data.decode()


@pytest.mark.parametrize("loader", ["Processor", "AutoProcessor", "AutoImageProcessor"])
def test_a_processor_load_reads_one_commit_while_the_branch_moves(hub, tmp_path, loader):
    from loom.preprocessing.processor import Processor

    first_proc = loom.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.5, 0.6])
    Processor(tokenizer=tiny_tokenizer(tmp_path / "tok"), image_processor=first_proc).push_to_hub("acme/pp")
    first = hub.commit_of("acme/pp").oid
    loom.ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path / "v2")
    moved = {p.name: p.read_bytes() for p in (tmp_path / "v2").iterdir()}
    hub.clear_log()
    # Once the Hub has named the commit of the first file, main moves to other image settings.
    hub.after(r"HEAD /acme/pp/resolve/main/", lambda s: s.add_commit("acme/pp", moved))
    load = Processor.from_pretrained if loader == "Processor" else getattr(loom, loader).from_pretrained
    loaded = load("acme/pp", cache_dir=tmp_path / "c")
    image = loaded.parts["image_processor"] if isinstance(loaded, Processor) else loaded
    assert image.to_dict() == first_proc.to_dict()
    assert hub.commit_of("acme/pp").oid != first
    fetched = [str(r) for r in hub.requests(r"resolve/")]
    assert len([r for r in fetched if "/main/" in r]) == 1, fetched
    assert all(f"/{first}/" in r for r in fetched if "/main/" not in r), fetched


def test_a_subfolder_uploads_and_loads(hub, tmp_path):
    from loom.hub_push import upload_folder

    model = tiny_model()
    model.save_pretrained(tmp_path / "up" / "encoder")
    upload_folder(tmp_path / "up", "acme/nested")
    assert "encoder/model.safetensors" in hub.commit_of("acme/nested").files
    again = loom.BertForMaskedLM.from_pretrained("acme/nested", subfolder="encoder", cache_dir=tmp_path / "c")
    ids = torch.tensor([[2, 5, 3]])
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)
    snapshot = tmp_path / "c" / "models--acme--nested" / "snapshots" / hub.commit_of("acme/nested").oid
    assert (snapshot / "encoder" / "model.safetensors").resolve().parent.name == "blobs"
