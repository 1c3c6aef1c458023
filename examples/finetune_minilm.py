"""Fine-tune all-MiniLM-L6-v2 for topic classification of sentences, offline, with loom's Trainer.

No labelled NLP dataset ships in a package reachable offline, so this example builds one
from text it carries: sentences about five topics (sport, cooking, weather, computing,
money) made from templates and per-topic phrases. The held-out test set is a genuine
generalisation test: its sentence templates and every subject and predicate phrase in it
are ones the training set never contains, so a model has to carry the topic over to new
words (the pretrained encoder's job), not memorise phrases.

    .venv/bin/python examples/finetune_minilm.py                  # ~1-3 min on 2 CPU cores
    .venv/bin/python examples/finetune_minilm.py --json out.json  # also write the numbers

It prints the test accuracy before fine-tuning (a random head: chance) and after, that of
a naive-Bayes bag-of-words model trained on the same sentences (how far shared words alone
get on the unseen phrases), the training wall time, and where the model was saved
(loadable with `from_pretrained`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch

import loom
from loom.embeddings import default_model_path
from loom.training import DataCollatorWithPadding, Trainer, TrainingArguments

# Each topic: subjects and predicates. The first 7 of each list are for training, the rest
# only ever appear in the test set.
TOPICS = {
    "sport": (
        ["the striker", "our goalkeeper", "the team captain", "the coach", "the referee",
         "the home side", "the young sprinter", "the tennis champion", "the cycling team",
         "the boxer", "the rugby squad"],
        ["scored twice in the final minutes", "won the championship after extra time",
         "missed a penalty in the cup match", "trained hard for the marathon",
         "was sent off for a rough tackle", "broke the national record in the relay",
         "signed a contract with a rival club", "lifted the trophy in front of the fans",
         "lost the semi-final on penalties", "finished first in the mountain stage",
         "knocked out the defending champion"],
    ),
    "cooking": (
        ["the chef", "my grandmother", "the pastry cook", "our neighbour", "the baker",
         "the cooking class", "my brother", "the restaurant kitchen", "the caterer",
         "the sous-chef", "my aunt"],
        ["simmered the tomato sauce for hours", "baked a loaf of sourdough bread",
         "added too much salt to the soup", "chopped onions and garlic for the stew",
         "roasted a chicken with rosemary", "whisked eggs and sugar into a sponge cake",
         "fried the potatoes in olive oil", "kneaded the dough for fresh pasta",
         "marinated the lamb overnight in yoghurt", "grilled the vegetables over charcoal",
         "seasoned the risotto with parmesan"],
    ),
    "weather": (
        ["the forecast", "the meteorologist", "the weather service", "the radar map",
         "the storm warning", "the morning bulletin", "the satellite image",
         "the coastal station", "the mountain observatory", "the climate report",
         "the evening forecast"],
        ["predicted heavy rain and strong winds", "warned of snow on the high roads",
         "showed a heatwave arriving by the weekend", "reported thick fog over the valley",
         "expected thunderstorms in the afternoon", "announced frost overnight",
         "measured record rainfall this month", "forecast sunshine with a light breeze",
         "tracked a hurricane moving toward the coast", "recorded hail and freezing drizzle",
         "expected a cold front bringing sleet"],
    ),
    "computing": (
        ["the programmer", "our server", "the new laptop", "the database", "the software team",
         "the compiler", "the operating system", "the web browser", "the network engineer",
         "the graphics card", "the startup's app"],
        ["crashed after the latest update", "compiled the code without errors",
         "ran out of memory during the backup", "installed a security patch overnight",
         "rebooted because of a kernel bug", "sped up queries with a new index",
         "downloaded the drivers for the printer", "encrypted the files on the disk",
         "leaked passwords through a buggy plugin", "rendered the scene with ray tracing",
         "synchronised the repository with the cloud"],
    ),
    "money": (
        ["the bank", "the investor", "the central bank", "my accountant", "the stock market",
         "the pension fund", "the tax office", "the hedge fund", "the finance minister",
         "the credit union", "the trader"],
        ["raised interest rates by half a point", "sold its shares before the crash",
         "lent money at a high rate", "reported record quarterly profits",
         "cut the budget deficit", "paid dividends to shareholders",
         "warned that inflation would rise", "refinanced the mortgage at a lower rate",
         "bought government bonds as prices fell", "wrote off the bad loans",
         "hedged the currency risk with futures"],
    ),
}
N_TRAIN_PHRASES = 7
TRAIN_TEMPLATES = ["{s} {p}.", "Yesterday {s} {p}.", "I read that {s} {p}.",
                   "Everyone was surprised when {s} {p}.", "Apparently {s} {p} again."]
TEST_TEMPLATES = ["According to the news, {s} {p}.", "Last week {s} {p}, people say.",
                  "Did you hear? {s} {p}!"]


def build_split(split: str, per_topic: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    templates = TRAIN_TEMPLATES if split == "train" else TEST_TEMPLATES
    rows = []
    for label, (subjects, predicates) in enumerate(TOPICS.values()):
        part = slice(None, N_TRAIN_PHRASES) if split == "train" else slice(N_TRAIN_PHRASES, None)
        combos = [(t, s, p) for t in templates for s in subjects[part] for p in predicates[part]]
        for t, s, p in rng.sample(combos, min(per_topic, len(combos))):
            text = t.format(s=s, p=p)
            rows.append((text[0].upper() + text[1:], label))
    rng.shuffle(rows)
    return rows


def word_baseline(train_rows, test_rows) -> float:
    """Test accuracy of multinomial naive Bayes on words: how far word overlap alone gets."""
    import numpy as np

    words = lambda text: text.lower().replace(".", " ").replace(",", " ").split()  # noqa: E731
    vocab = {w: i for i, w in enumerate(sorted({w for t, _ in train_rows for w in words(t)}))}
    counts = np.ones((len(TOPICS), len(vocab)))  # add-one smoothing
    for text, label in train_rows:
        for w in words(text):
            counts[label, vocab[w]] += 1
    log_p = np.log(counts / counts.sum(1, keepdims=True))
    right = 0
    for text, label in test_rows:
        ids = [vocab[w] for w in words(text) if w in vocab]
        right += int(log_p[:, ids].sum(1).argmax() == label)
    return right / len(test_rows)


def encode(tokenizer, rows) -> list[dict]:
    enc = tokenizer([text for text, _ in rows], truncation=True, max_length=64)
    return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "token_type_ids": enc["token_type_ids"][i], "labels": label} for i, (_, label) in enumerate(rows)]


def accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default=None, help="where to save (default: a temporary folder)")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--per-topic", type=int, default=120, help="training sentences per topic")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    o = parser.parse_args()
    torch.set_num_threads(o.threads)
    out = Path(o.output_dir or tempfile.mkdtemp(prefix="minilm-topics-"))
    folder = default_model_path()
    names = list(TOPICS)
    tokenizer = loom.AutoTokenizer.from_pretrained(folder)
    model = loom.BertForSequenceClassification.from_pretrained(
        folder, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    train_rows, test_rows = build_split("train", o.per_topic, 0), build_split("test", 60, 1)
    train_texts = {t for t, _ in train_rows}
    assert not train_texts & {t for t, _ in test_rows}, "test sentences must be unseen"
    args = TrainingArguments(output_dir=str(out), num_train_epochs=o.epochs, per_device_train_batch_size=16,
                             per_device_eval_batch_size=64, learning_rate=1e-4, weight_decay=0.01,
                             warmup_ratio=0.1, logging_steps=10, eval_strategy="epoch", save_strategy="epoch",
                             save_total_limit=1, seed=0, disable_tqdm=True)
    trainer = Trainer(model, args, train_dataset=encode(tokenizer, train_rows),
                      eval_dataset=encode(tokenizer, test_rows), data_collator=DataCollatorWithPadding(tokenizer),
                      processing_class=tokenizer, compute_metrics=accuracy)
    before = trainer.evaluate()["eval_accuracy"]
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    after = trainer.evaluate()
    trainer.save_model(str(out / "model"))
    show_examples(model, tokenizer, names)
    results = {"model": "all-MiniLM-L6-v2", "train_sentences": len(train_rows), "test_sentences": len(test_rows),
               "topics": len(names), "epochs": o.epochs, "steps": trainer.state.global_step,
               "word_overlap_baseline": round(word_baseline(train_rows, test_rows), 4),
               "accuracy_before": round(before, 4), "accuracy_after": round(after["eval_accuracy"], 4),
               "train_seconds": round(seconds, 1), "threads": o.threads,
               "load_average": round(os.getloadavg()[0], 1), "saved_to": str(out / "model")}
    print(json.dumps(results, indent=2))
    if o.json:
        Path(o.json).write_text(json.dumps(results, indent=2) + "\n")


def show_examples(model, tokenizer, names) -> None:
    texts = ["The goalkeeper saved a penalty in the derby.", "She stirred the custard until it thickened.",
             "Gales and driving rain are due on Sunday.", "The app froze whenever the cache filled up.",
             "The lender tightened its mortgage rules."]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model.eval()(**enc).logits.argmax(-1).tolist()
    for text, p in zip(texts, predicted):
        print(f"  {names[p]:>9}  <- {text}")


if __name__ == "__main__":
    main()
