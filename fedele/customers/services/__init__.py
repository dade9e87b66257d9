"""Every write of the customers module. Split by topic; each function is one transaction."""
