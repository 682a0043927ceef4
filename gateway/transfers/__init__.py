"""Hand-overs and callbacks the gateway drives on Asterisk.

- ``machine``: a transfer (blind, consult, three-way) and its pure state machine;
- ``service``: performs transfers over AMI, follows them through AMI events, times them out;
- ``callback``: the callback (回拨) queue in Redis and its dispatcher;
- ``http``: the API routes and ``setup_transfers(app)``.
The dialplan they rely on (hotline-handover, -threeway, -return, -callback-dial) is rendered by
``gateway.dialplan.render``; the tracker follows every leg they create.
"""
