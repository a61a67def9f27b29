from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClerkConfig(AppConfig):
    name = "clerk"
    verbose_name = _("Clerk")
