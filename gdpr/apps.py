from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GdprConfig(AppConfig):
    name = "gdpr"
    verbose_name = _("GDPR")

    def ready(self) -> None:
        from gdpr import checks, clerk_hooks, receivers  # noqa: F401 - checks register on import
        from gdpr.admin import CONSENT_PART
        from gdpr.importing import LedgerForImport
        from shop.admin import CustomerAdmin
        from shop.consent_hook import register_consent_ledger

        receivers.connect()
        clerk_hooks.register()
        # The one hook through which consent handling plugs into the shop's import and demo.
        register_consent_ledger(LedgerForImport)
        # The one extension point through which consent management joins the customer admin.
        CustomerAdmin.add_part(CONSENT_PART)
