class QueryError(ValueError):
    """A query that cannot be read. `position` is the 0-based character offset where reading
    stopped; `message` says what was expected there."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at character {position + 1})")
        self.message = message
        self.position = position
