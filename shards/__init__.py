"""The on-disk shard format and everything that reads it.

A shards dir holds WebDataset tar shards (``train-000000.tar`` ...), a DALI
``.idx`` beside each, ``index.parquet`` (one row per image) and
``manifest.json``. Open one with :func:`shards.reader.open_shards`.
"""
