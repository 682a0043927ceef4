"""Hand-overs the gateway drives on Asterisk (callbacks are ``gateway.callbacks``).

- ``machine``: a transfer (blind, consult, three-way) and its pure state machine;
- ``service``: performs transfers over AMI, follows them through AMI events, times them out;
- ``http``: the API routes and ``setup_transfers(app)``.
The dialplan they rely on (hotline-handover, -threeway, -return) is rendered by
``gateway.dialplan.render``; the tracker follows every leg they create.
"""
