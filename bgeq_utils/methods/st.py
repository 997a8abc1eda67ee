"""sentence-transformers' own FP32 forward: the baseline a user gets from SentenceTransformer.encode."""
from __future__ import annotations

import numpy as np

from bgeq_utils.methods.encoders import Encoder
from bgeq_utils.methods.registry import register


class SentenceTransformerEncoder(Encoder):
    def __init__(self, reference, device="cpu"):
        from sentence_transformers import SentenceTransformer
        super().__init__(reference, device)
        self.st = SentenceTransformer(str(reference.folder), device=device)
        self.st.eval()
        # What SentenceTransformer(...) loads with no dtype argument on this device (the guide says FP16 on GPUs).
        self.info = {"api": "SentenceTransformer.forward", "modules": [type(m).__name__ for m in self.st],
                     "loaded_dtype": str(next(self.st.parameters()).dtype).replace("torch.", "")}

    def embed_features(self, features):
        import torch
        feats = {k: torch.from_numpy(v).to(self.device) for k, v in features.items()}
        with torch.inference_mode():
            emb = self.st(feats)["sentence_embedding"]
            emb = torch.nn.functional.normalize(emb.float(), dim=1)
        return emb.cpu().numpy().astype(np.float32, copy=False)

    def param_bytes(self):
        return sum(t.nbytes for t in self.st.state_dict().values())

    def save(self, folder):
        self.st.save(str(folder))
        return folder

    def close(self):
        self.st = None


@register("fp32-st", precision="fp32", library="sentence-transformers",
          summary="FP32 through SentenceTransformer's own modules (what .encode runs)")
def fp32_st(reference, device="cpu", calibration=None, **_):
    """The sentence-transformers FP32 baseline that published speed-ups are quoted against."""
    return SentenceTransformerEncoder(reference, device)
