"""The one exception every decoder raises for input that breaks its wire format."""


class DecodeError(ValueError):
    """Bad input from a sender. The message is short, plain text and safe to send back.

    Transports catch only this: anything else escaping a decoder is a bug in Logsite, not
    in the sender, and should be loud.
    """
