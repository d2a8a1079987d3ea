"""The `logsite` command-line client (search, tail). Talks to a Logsite server over its API
with an API token; imports nothing from the server."""
