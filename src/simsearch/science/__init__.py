"""The science around the index: evaluation (STS Spearman, recall@k, MRR), anisotropy
diagnostics, and training (SBERT objectives, SimCSE, MLM/TSDAE pre-training)."""
