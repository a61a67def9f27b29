"""`manage.py gdpr_erase`: the right to erasure, from the command line."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from gdpr.erasure import NothingToErase, erase_person


class Command(BaseCommand):
    help = (
        "Erase one person: anonymise their customer rows and orders, redact the evidence of their "
        "consent records (the records stay as proof), and queue /privacy/forget and the deletions "
        "at Clerk, in one transaction. The summary never repeats the email. Exit status: 0 done, "
        "1 nothing matched or bad arguments."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument(
            "--email",
            help="every customer who has or had this email (any case), and every order placed with any of their emails",
        )
        who.add_argument(
            "--customer", type=int, help="one customer id (and every order placed with any email they have had)"
        )
        parser.add_argument("--reference", default="", help="ticket/request number for the audit trail")
        parser.add_argument("--by", default=None, help="username of the staff member carrying it out")

    def handle(self, *args, email, customer, reference, by, **options):
        if not email and customer is None:
            raise CommandError("give --email or --customer")
        requested_by = None
        if by:
            try:
                requested_by = get_user_model().objects.get_by_natural_key(by)
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"unknown user {by!r}") from exc
        try:
            summary = erase_person(
                email=email or None, customer_id=customer, requested_by=requested_by, reference=reference
            )
        except NothingToErase as exc:
            raise CommandError("nothing to erase: no customer or order matches") from exc
        self.stdout.write(str(summary))
