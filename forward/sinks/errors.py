"""What every sink raises. The forwarding run only needs three facts about a failure: may the
same rows be sent again (`retryable`), how many of them the destination had already
acknowledged (`rows_sent`, so the cursor moves exactly that far), and how long the destination
asked us to wait (`retry_after`, seconds or None)."""


class SinkError(Exception):
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.rows_sent = 0


class SinkRetryableError(SinkError):
    retryable = True


class SinkFinalError(SinkError):
    pass
