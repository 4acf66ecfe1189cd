"""The soak test: the service against every fake venue for an hour (``make soak``)."""
