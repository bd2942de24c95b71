"""One router per console page group."""
