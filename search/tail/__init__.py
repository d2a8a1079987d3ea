"""Live tail: the websocket protocol's pieces (search/consumers.py wires them together).

See docs/live-tail.md for the protocol and the no-gap/no-duplicate rule.
"""
