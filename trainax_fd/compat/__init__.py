"""Other packages' public surfaces as thin layers over `trainax_fd`'s own API.

- `trainax_fd.compat.trainax`: trainax 0.0.2; `import trainax_fd.compat.trainax as tx` runs
  trainax code unchanged, compiled.
"""
