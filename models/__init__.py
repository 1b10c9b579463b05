"""ctxbench's model zoo: Transformers, Mamba-1, Mamba-2 and hybrids from one pattern-built stack.

    import models
    models.preset_names()                       # conf/model/*.yaml
    models.size_names()                         # conf/size/*.yaml
    cfg = models.config("hybrid_1_7", "1.3b")   # validated ModelConfig, nothing allocated
    cfg.cost().memory(1, 65536, "bfloat16")     # analytic cost model
    model = cfg.build("cuda", torch.bfloat16, backends={"attention": "cudnn", "ssm": "triton"})
    tiny = models.create("mamba2", d_model=64, n_layer=2, vocab_size=256)
    hf = models.load_hf("path/or/hub-id")       # Llama/Mistral, Mamba, Mamba-2 -> native model

Every model (native or transformers-backed) has forward(ids, last_only=False), allocate_cache,
prefill, step, num_params, kernel_backends and a `cfg`.
"""

from models.config import ModelConfig, config, create, preset_names, size_info, size_names
from models.hf import load_hf

__all__ = [
    "ModelConfig",
    "config",
    "create",
    "load_hf",
    "preset_names",
    "size_info",
    "size_names",
]
