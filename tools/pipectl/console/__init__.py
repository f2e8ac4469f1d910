"""The pipeline console: operator dashboard and the HTTP gate Kargo's `http` step calls.

`server` is the stdlib HTTP layer (routing, headers, limits), `auth` decides *who* is asking,
`api` turns requests into calls of the same modules the CLI uses (gate, promotion, audit,
status, inttest, stages_edit). The console makes no promotion decision of its own.
"""
