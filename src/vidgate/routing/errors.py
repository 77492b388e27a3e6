"""What a vendor's completion callback can be refused for."""

from __future__ import annotations

from vidgate.errors import NotAuthenticated, NotFound, NotImplementedFeature, ServiceUnavailable


class CallbackNotVerified(NotAuthenticated):
    """The callback's signature does not verify against the vendor's keys, or it is too old."""

    detail = "The callback's signature does not verify"


class CallbacksNotConfigured(NotImplementedFeature):
    """This server takes no callbacks from this vendor (its adapter or key is not configured)."""

    detail = "Callbacks from this vendor are not configured"


class CallbackKeysUnavailable(ServiceUnavailable):
    """The vendor's signing keys could not be fetched; the vendor sends the callback again."""

    detail = "The vendor's signing keys are unavailable; send the callback again later"


class ChannelNotFound(NotFound):
    """No channel of any model in the loaded catalog has this id."""

    detail = "Channel not found"
