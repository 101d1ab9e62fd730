"""Storage: locations reached through fsspec (atomic writes, streamed reads, listing, retries)
and replica sets that write to several of them at once. Knows bytes and paths, not values."""
