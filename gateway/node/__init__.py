"""One controlled Asterisk node: its AMI link, tracker, event pipeline, ticker, Redis sharing, lease.

``runtime``: ``Node`` (the parts of one node), ``build_node`` and the node's background tasks.
The composition root (``gateway.app``) builds the home node and any node taken over; the web
layer reads nodes; domain services get narrow ports (``gateway.ports``), never a node.
"""
