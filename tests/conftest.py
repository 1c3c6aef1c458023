import logging

import torch

torch.set_num_threads(2)
logging.getLogger("transformers").setLevel(logging.ERROR)
