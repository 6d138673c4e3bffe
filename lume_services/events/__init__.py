"""Events and webhooks: target checks, signing, and the delivery loop.

The event feed is the audit trail (``ModelDBService.list_events``);
webhooks and their deliveries are stored by ``ModelDBService``
(``services/models/webhook_ops.py``). This package holds what is not
storage: :mod:`.targets` (which URLs may be sent to), :mod:`.signing`
(HMAC-SHA256 of the body) and :mod:`.deliver` (the delivery process, over
httpx). Nothing here is imported by ``service.py`` except the light
:mod:`.targets` and :mod:`.signing`.
"""
