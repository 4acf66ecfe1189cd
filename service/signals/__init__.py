"""Pure, event-time measures and detectors computed from books and trades."""
