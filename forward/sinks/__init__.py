"""Destinations that stored log lines are forwarded to. Sinks never import Django, so they can be
used and tested on their own; forward/tasks.py feeds them rows and moves the cursor."""
