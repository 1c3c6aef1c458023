"""The architectures loom ships, one folder each.

`MODEL_TYPES` maps every `model_type` a config.json may carry to the folder (module) that
implements it; checkpoint families that share an architecture are aliases here.
"""

MODEL_TYPES: dict[str, str] = {
    "bert": "bert",
    "vit": "vit",
    "clip": "clip",
    "clip_text_model": "clip.clip_text_model",
    "clip_vision_model": "clip.clip_vision_model",
    "gpt2": "gpt2",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "t5": "t5",
    "whisper": "whisper",
}
