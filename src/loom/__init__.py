"""loom: pretrained transformer models, three classes per model.

The public names load on first use (PEP 562), so `import loom` is quick and imports
neither torch nor jax.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # errors
    **{
        name: "loom.errors"
        for name in (
            "LoomError", "ConfigError", "UnknownModelTypeError", "CheckpointError",
            "ShapeMismatchError", "UnsafeCheckpointError", "TokenizerError", "InputError",
            "HubError", "OfflineError", "NetworkError", "EntryNotFoundError",
            "RepositoryNotFoundError", "RevisionNotFoundError", "GatedRepoError",
            "UnauthorizedError", "CorruptDownloadError",
        )
    },
    "Config": "loom.configuration",
    "PretrainedConfig": "loom.configuration",
    "PreTrainedModel": "loom.modeling.base",
    "Tokenizer": "loom.preprocessing.tokenizer",
    "PreTrainedTokenizerFast": "loom.preprocessing.tokenizer",
    "BatchEncoding": "loom.preprocessing.tokenizer",
    **{
        name: "loom.auto"
        for name in (
            "AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForMaskedLM",
            "AutoModelForSequenceClassification", "AutoModelForTokenClassification",
            "AutoModelForQuestionAnswering", "AutoModelForPreTraining", "AutoModelForCausalLM",
        )
    },
    **{
        name: "loom.models.bert"
        for name in (
            "BertConfig", "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
            "BertForTokenClassification", "BertForQuestionAnswering", "BertForPreTraining",
        )
    },
    "SentenceEmbedder": "loom.embeddings",
    # vision and multimodal
    **{
        name: "loom.auto"
        for name in ("AutoImageProcessor", "AutoProcessor", "AutoModelForImageClassification",
                     "AutoModelForZeroShotImageClassification")
    },
    "ImageProcessor": "loom.preprocessing.image",
    **{name: "loom.preprocessing.processor" for name in ("Processor", "ProcessorMixin", "BatchFeature")},
    **{
        name: "loom.models.vit"
        for name in ("ViTConfig", "ViTModel", "ViTForImageClassification", "ViTImageProcessor")
    },
    **{
        name: "loom.models.clip"
        for name in (
            "CLIPConfig", "CLIPTextConfig", "CLIPVisionConfig", "CLIPModel", "CLIPTextModel",
            "CLIPVisionModel", "CLIPTextModelWithProjection", "CLIPVisionModelWithProjection",
            "CLIPImageProcessor", "CLIPProcessor",
        )
    },
    **{
        name: "loom.models.gpt2"
        for name in ("GPT2Config", "GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification")
    },
    **{
        name: "loom.models.llama"
        for name in ("LlamaConfig", "LlamaModel", "LlamaForCausalLM", "LlamaForSequenceClassification")
    },
    **{
        name: "loom.generation"
        for name in (
            "GenerationConfig", "GenerationMixin", "GenerateOutput", "LogitsProcessor",
            "LogitsProcessorList", "StoppingCriteria", "StoppingCriteriaList", "TextStreamer",
            "TextIteratorStreamer",
        )
    },
    **{name: "loom.nn.cache" for name in ("DynamicCache", "StaticCache", "EncoderDecoderCache")},
    # encoder-decoder and speech
    **{
        name: "loom.auto"
        for name in ("AutoModelForSeq2SeqLM", "AutoModelForSpeechSeq2Seq", "AutoFeatureExtractor")
    },
    **{name: "loom.preprocessing.audio" for name in ("FeatureExtractor", "SequenceFeatureExtractor", "load_audio")},
    **{
        name: "loom.models.t5"
        for name in ("T5Config", "T5Model", "T5ForConditionalGeneration", "T5EncoderModel")
    },
    **{
        name: "loom.models.whisper"
        for name in ("WhisperConfig", "WhisperModel", "WhisperForConditionalGeneration",
                     "WhisperFeatureExtractor", "WhisperProcessor", "WhisperTokenizer")
    },
    # training (loom.training loads torch only when a torch-side name is used)
    **{
        name: "loom.training"
        for name in (
            "Trainer", "TrainingArguments", "TrainOutput", "EvalPrediction", "PredictionOutput",
            "DataCollatorWithPadding", "DataCollatorForLanguageModeling",
            "DataCollatorForTokenClassification", "DataCollatorForSeq2Seq", "default_data_collator",
            "TrainerCallback", "TrainerState", "TrainerControl", "ProgressCallback",
            "JSONLinesCallback", "EarlyStoppingCallback", "TensorBoardCallback", "set_seed",
        )
    },
    "pipeline": "loom.pipelines",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loom' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return __all__
