"""Annotation: the five attributes and LLM judges on vLLM, the protocol, example retrieval."""
