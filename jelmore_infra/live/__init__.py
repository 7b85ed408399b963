"""Reading and changing the live JetStream server: the management API client and the live read."""
