"""What the method tests share: the checks every embedding passes, measured against FP32."""
import numpy as np

from bgeq_utils.measure import metrics

MB = 1e6


def check_embeddings(emb, fp32_emb, n, dim=384):
    assert emb.shape == (n, dim) and emb.dtype == np.float32
    assert np.isfinite(emb).all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    return metrics.fidelity(fp32_emb, emb)
