"""Django admin phrases this project words differently in Italian (never imported).

Marked here so that `makemessages` run at the project root puts them in `locale/`, whose
translations win over Django's own catalogue. Django's "Aggiungi un altro %(verbose_name)s"
is wrong for a feminine name ("un altro Riga d'ordine"); ours fits every name.
"""

from django.utils.translation import gettext_noop

ADD_ANOTHER = gettext_noop("Add another %(verbose_name)s")
# Django 5.2's headers of the app list's columns (for screen readers), without Italian in Django.
MODEL_NAME = gettext_noop("Model name")
ADD_LINK = gettext_noop("Add link")
LIST_LINK = gettext_noop("Change or view list link")
# Django 5.x's user pages: strings Django's Italian catalogue does not translate yet.
USER_WORDING = (
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
    gettext_noop("Password-based authentication"),
    gettext_noop("Enabled"),
    gettext_noop("Disabled"),
    gettext_noop("Password-based authentication was disabled."),
    gettext_noop(
        "Whether the user will be able to authenticate using a password or not. If disabled, they may "
        "still be able to authenticate using other backends, such as Single Sign-On or LDAP."
    ),
    gettext_noop("Raw passwords are not stored, so there is no way to see the user’s password."),
)
