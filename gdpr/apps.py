from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GdprConfig(AppConfig):
    name = "gdpr"
    verbose_name = _("GDPR")

    def ready(self) -> None:
        from gdpr import checks, clerk_hooks, receivers  # noqa: F401 - checks register on import

        receivers.connect()
        clerk_hooks.register()
