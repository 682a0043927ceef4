"""Call records and their way to the order system (工单系统); docs/order-system.md is the contract.

- ``model``: the versioned record (``CallRecord``, v1) with its identity rules; ``schema`` keeps the
  committed JSON Schema in step with it.
- ``from_calls``: ``RecordBuilder`` turns the call tracker's outputs into records.
- ``outbox``: ``Outbox`` appends records to a Redis Stream (or the fsync'd ``spool`` while Redis is
  unreachable), plus dead-letter and backlog functions for the API.
- ``dispatcher``: ``Dispatcher`` delivers the stream with ``client.OrderSystemClient``, at least
  once, deduplicated by the receiver; ``metrics`` are its Prometheus series.
- ``feedback``: resolution and follow-up satisfaction posted back by the order system, and the rates.

The reference receiver and example records live in ``gateway.ordersink`` (not the product).
Submodules are imported explicitly, so importing the package costs nothing.
"""
