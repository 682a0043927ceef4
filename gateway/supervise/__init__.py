"""Supervisors listening to, whispering to and barging in on live calls (监听 / 耳语 / 强插)."""
