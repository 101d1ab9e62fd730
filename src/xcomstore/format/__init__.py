"""The object format: header, payload and seal, and what a payload passes through on its way
(compression, encryption, hashing). Imports nothing of xcomstore but errors and identity."""
