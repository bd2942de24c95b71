"""Pure rules of keyplane: key format, hashing, the scope algebra, status and limits.

Nothing here imports a web framework, a database driver or Redis (import-linter checks it).
"""
