from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedsConfig(AppConfig):
    name = "feeds"
    verbose_name = _("Clerk feeds")

    def ready(self) -> None:
        # Registers the feeds' security checks (clerkfeeds.E0xx / W0xx) with Django.
        # Import runs for ops: every served page is folded into its importer walk.
        from clerk import hooks as clerk_hooks
        from feeds import (
            checks,  # noqa: F401
            health_checks,
            push,
            signals,
            walks,
        )

        signals.page_served.connect(walks.record_page, dispatch_uid="feeds.walks.record_page")
        health_checks.register()  # the feeds' part of manage.py clerk_check
        clerk_hooks.renders(push.render_objects)  # a push sends what the feed would serve
