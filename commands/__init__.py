"""The command line of ``pagewright-gateway``: one module per command, beside the protocol
package. The highest layer: it may import ``gateway``, ``policy``, ``translators`` and
``core``; nothing imports it but the tests."""
