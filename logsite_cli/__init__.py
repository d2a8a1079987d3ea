"""`logsite` command-line client. It talks to a Logsite server over HTTP(S)/websockets with an
API token and imports nothing from the server (it is meant to be installed on laptops)."""
