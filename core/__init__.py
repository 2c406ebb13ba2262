"""The bottom layer: values every other package shares and nothing that depends on them.

The S3 error table and :class:`~core.errors.S3Error`, checksum algorithms and the one
incremental digester, the request context, byte ranges, body stream types and strict number
parsing. Imports run ``commands`` -> ``gateway`` -> ``policy`` -> ``translators`` -> ``core``;
this package imports none of the others (``tests/test_layers.py`` checks it).
"""
