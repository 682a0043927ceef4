"""Callbacks (回拨): the callback queue in Redis and the dialler that calls citizens back.

- ``service``: the queue, the dispatch rule, placing calls back and reading their outcomes;
- ``http``: ``GET /api/callbacks``.
The dialplan it relies on (hotline-outbound, hotline-callback-dial) is rendered by
``gateway.dialplan.render``; the tracker follows every leg it creates.
"""
