from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClerkConfig(AppConfig):
    name = "clerk"
    verbose_name = _("Clerk")

    def ready(self) -> None:
        from clerk import admin_push, checks, receivers  # noqa: F401 - checks and the admin register on import

        receivers.connect()
