"""Task-specific pieces: prompt/label formats, heads, losses, decoding rules, metrics and corpora.

Each task is one module here, named in one registry; `tasks` may import `encoders`, never `multimodal`.
"""
