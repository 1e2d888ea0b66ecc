"""The trainax 0.0.2 surface as thin layers over `trainax_fd`'s own API."""
