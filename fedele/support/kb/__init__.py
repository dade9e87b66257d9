"""Knowledge-base internals: text preparation, the in-process BM25 index, optional semantic vectors."""
