"""Maps fitted on the corpus and applied to queries alike: whitening
(:mod:`~simsearch.transforms.whitening`) and BERT-flow (:mod:`~simsearch.transforms.flow`)."""
