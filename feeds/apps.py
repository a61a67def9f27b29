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
        _refresh_listings_after_reconciliation()
        # Consent changes and imports move the personal feeds' positions with them.
        from feeds import listing
        from gdpr.membership import feed_membership_changed

        feed_membership_changed.connect(listing.follow_membership, dispatch_uid="feeds.listing.follow_membership")


class _ListingReport:
    def __init__(self, reconciled: object, listings: dict) -> None:
        self.reconciled, self.listings = reconciled, listings

    def __str__(self) -> str:
        listed = ", ".join(f"{name} {counts}" for name, counts in self.listings.items())
        return f"{self.reconciled}; listings: {listed}"


def _refresh_listings_after_reconciliation() -> None:
    """The worker's periodic pass (gdpr's sweep, registered before: gdpr is installed before
    feeds) also brings the personal feeds' positions in line (`feeds.listing.refresh_all`)."""
    from clerk import hooks
    from feeds import listing

    previous = hooks.reconciliation()
    if previous is None or getattr(previous, "refreshes_listings", False):
        return

    def reconcile() -> _ListingReport:
        return _ListingReport(previous(), listing.refresh_all())

    reconcile.refreshes_listings = True  # type: ignore[attr-defined]
    hooks.reconciles_with(reconcile)
