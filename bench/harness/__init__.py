"""Harnesses shared by the bench scripts and the test suite (which imports them from here).

``system``: the whole product as separate processes, the system faults and their accounting.
"""
