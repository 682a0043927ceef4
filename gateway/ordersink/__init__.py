"""The reference order system: for the demo, the tests and the bench, not the product.

- ``sink``: ``hotline-gateway order-sink``, a receiver of work orders that stores them in SQLite;
- ``examples``: realistic call records built from a few numbers.
The product's side of the contract (records, outbox, dispatchers) is ``gateway.records``.
"""
