"""Training sentence-embedding models: the SBERT objectives, SimCSE, the NLI classifier
and MLM/TSDAE pre-training, with one config and one result card."""
