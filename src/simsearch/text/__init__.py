"""Korean text analysis: Kiwi morphemes (:mod:`~simsearch.text.kiwi`) and sentence-aware
windows of long documents (:mod:`~simsearch.text.windows`)."""
