"""Texts to vectors behind one encoder protocol: sentence-transformers on torch
(:mod:`~simsearch.encoding.sbert`), the ONNX export for cold queries
(:mod:`~simsearch.encoding.onnx`), Ray Data and multi-GPU pools
(:mod:`~simsearch.encoding.distributed`), model files and pre-flight checks."""
