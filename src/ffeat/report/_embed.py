"""2-D embeddings of the feature vectors: PCA and t-SNE."""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

__all__ = ["embed"]

#: At most this many points go into t-SNE (a seeded subsample beyond).
MAX_TSNE = 1500


def embed(F: np.ndarray, *, seed: int = 0) -> dict:
    """PCA and t-SNE coordinates of standardised features.

    Returns
    -------
    dict
        ``pca`` (n, 2), ``pca_variance`` (explained ratio of the two axes),
        ``tsne`` (m, 2) or None when there are fewer than 10 images, and
        ``tsne_index`` (the rows ``tsne`` belongs to).
    """
    Z = StandardScaler().fit_transform(F)
    Z = np.nan_to_num(Z)
    n_comp = min(2, *Z.shape)
    pca = PCA(n_components=n_comp, random_state=seed).fit(Z)
    P = pca.transform(Z)
    if P.shape[1] < 2:
        P = np.column_stack([P, np.zeros(len(P))])
    out = {"pca": P, "pca_variance": pca.explained_variance_ratio_.tolist(), "tsne": None,
           "tsne_index": np.arange(0)}
    if len(Z) >= 10:
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(len(Z), MAX_TSNE, replace=False)) if len(Z) > MAX_TSNE \
            else np.arange(len(Z))
        Zs = Z[index]
        k = min(50, *Zs.shape)
        Zs = PCA(n_components=k, random_state=seed).fit_transform(Zs)
        perplexity = float(min(30, (len(Zs) - 1) / 3))
        # One thread: deterministic, and far faster than OpenMP threads on a busy machine.
        with threadpool_limits(1):
            out["tsne"] = TSNE(n_components=2, perplexity=perplexity, init="pca",
                               random_state=seed).fit_transform(Zs)
        out["tsne_index"] = index
    return out
