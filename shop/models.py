"""Models that mirror the shop: catalogue, pages, customers and orders.

Ids are the shop's own integer ids (Clerk wants one id type per feed, and ints). Every object
has a feed-relevant `updated_at`: it moves whenever anything a feed shows of the object changes
(an order line, a translation, a category membership, a consent), so Clerk's incremental
imports (`modified_after`) see the change. It is set by the services that write (the importer,
the consent ledger, the admin), never by `save()` itself: an imported object keeps the shop's
own modification time.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import orjson
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import DataError, models
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from shop.clerk_objects import ATTRIBUTE_NAME_RE

validate_attribute_name = RegexValidator(
    ATTRIBUTE_NAME_RE,
    _("Attribute names may contain only A-Z, a-z, 0-9 and underscores."),
    code="invalid_attribute_name",
)


def validate_attributes(value: object) -> None:
    """Extra attributes: an object whose keys are valid Clerk attribute names."""
    if not isinstance(value, dict):
        raise ValidationError(_("Attributes must be a JSON object."), code="invalid_attributes")
    for name in value:
        validate_attribute_name(name)


def validate_translations(value: object) -> None:
    """Translations: {language: {field: text}}, with valid names and string texts."""
    if not isinstance(value, dict):
        raise ValidationError(_("Translations must be a JSON object."), code="invalid_translations")
    for language, texts in value.items():
        validate_attribute_name(language)
        if not isinstance(texts, dict) or not all(isinstance(t, str) for t in texts.values()):
            raise ValidationError(
                _("Translations for %(language)s must map field names to texts."),
                code="invalid_translations",
                params={"language": language},
            )


def email_key(email: str | None) -> str:
    """The key that decides whether two emails are one person's: stripped and Unicode-casefolded
    in Python (ß and ss, É and é are one), never by the database's LOWER(), which differs between
    SQLite (ASCII only) and PostgreSQL. "" for no email: a blank key links to nobody."""
    return (email or "").strip().casefold()


# casefold() may lengthen a text ("ß" -> "ss", "ﬃ" -> "ffi"): three times an email's 254.
EMAIL_KEY_LENGTH = 762


class FastJSONField(models.JSONField):
    """A JSONField read with orjson: a feed page decodes two per row (attributes and
    translations), and the standard library's decoder was a tenth of a page's time."""

    def from_db_value(self, value, expression, connection):
        if isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return value  # as Django's own field does with a value it cannot decode
        return super().from_db_value(value, expression, connection)


class ExactPriceField(models.DecimalField):
    """A price held exactly on every database (a guide example has 16 significant digits).

    PostgreSQL's numeric is exact. SQLite keeps a NUMERIC column as a double (about 15 digits),
    so there the column is TEXT holding the decimal zero-padded to a fixed width
    (`00000000001234.5000`): compared and sorted as text, it orders as the number does, so
    lookups and ordering on it still work. Prices are never negative (the validator; a negative
    one would still be stored exactly, only not ordered among negatives).
    """

    default_validators = (MinValueValidator(Decimal(0)),)

    def get_internal_type(self) -> str:
        # Not "DecimalField": SQLite's backend would read the column through a float.
        return "ExactPriceField"

    def db_type(self, connection) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return connection.data_types["DecimalField"] % self.db_type_parameters(connection)

    def get_db_converters(self, connection) -> list:
        # PostgreSQL's driver already gives a Decimal: no per-row converter on a feed page.
        return [self.from_db_value] if connection.vendor == "sqlite" else []

    def from_db_value(self, value, expression, connection):
        if type(value) is str:
            return Decimal(value)
        return self.to_python(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if connection.vendor != "sqlite" or not isinstance(value, Decimal):
            return value
        whole_digits = self.max_digits - self.decimal_places
        try:
            # Rounded as PostgreSQL rounds what it stores in numeric(18, 4).
            exact = value.quantize(Decimal(1).scaleb(-self.decimal_places), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            exact = None
        if exact is None or exact.adjusted() >= whole_digits:
            # As PostgreSQL refuses it: never stored rounded or cut.
            raise DataError(f"numeric field overflow: {self.name} takes at most {whole_digits} digits before the point")
        if exact.is_zero():
            exact = exact.copy_abs()  # no "-0": it would sort before every price
        return f"{exact:0{self.max_digits + 1}f}"


class FeedObject(models.Model):
    """What every object a feed shows has: the shop's id and a feed-relevant change time."""

    id = models.BigIntegerField(_("id"), primary_key=True)
    updated_at = models.DateTimeField(
        _("updated at"),
        default=timezone.now,
        db_index=True,
        help_text=_("When anything a Clerk feed shows of this object last changed."),
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        # "Order 10046", "Ordine 10046": the model's name in the active language, then the id.
        return f"{capfirst(self._meta.verbose_name)} {self.pk}"


class EmailKeyed(models.Model):
    """A row with `email` and its `email_key`: `save()` keeps the key (bulk writes set it)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.email_key = email_key(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_key"}
        super().save(*args, **kwargs)


class Translatable(models.Model):
    """Per-language texts for multi-language feeds: {"italian": {"name": "…"}, …}."""

    translations = FastJSONField(
        _("translations"),
        default=dict,
        blank=True,
        validators=[validate_translations],
    )

    class Meta:
        abstract = True


class Category(FeedObject, Translatable):
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
    )
    name = models.CharField(_("name"), max_length=255)
    url = models.URLField(_("url"), max_length=1000)
    image = models.URLField(_("image"), max_length=1000, blank=True)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Product(FeedObject, Translatable):
    name = models.CharField(_("name"), max_length=500)
    description = models.TextField(_("description"), blank=True)
    price = ExactPriceField(_("price"), max_digits=18, decimal_places=4)
    list_price = ExactPriceField(_("list price"), max_digits=18, decimal_places=4, null=True, blank=True)
    image = models.URLField(_("image"), max_length=1000)
    url = models.URLField(_("url"), max_length=1000)
    brand = models.CharField(_("brand"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"))
    index = models.BooleanField(
        _("shown by Clerk"),
        default=True,
        help_text=_("Off: Clerk keeps the product's sales history but never shows it."),
    )
    attributes = FastJSONField(
        _("extra attributes"),
        default=dict,
        blank=True,
        validators=[validate_attributes],
    )
    categories = models.ManyToManyField(
        Category, verbose_name=_("categories"), through="ProductCategory", related_name="products"
    )

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class ProductCategory(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    # No database constraint: a product may name a category the shop has not sent (yet);
    # Clerk accepts the id, and a constraint would make import order matter.
    category = models.ForeignKey(Category, on_delete=models.DO_NOTHING, db_constraint=False)

    class Meta:
        verbose_name = _("product category")
        verbose_name_plural = _("product categories")
        constraints = [models.UniqueConstraint(fields=["product", "category"], name="unique_product_category")]

    def __str__(self) -> str:
        return _("product %(product)s in category %(category)s") % {
            "product": self.product_id,
            "category": self.category_id,
        }


class Page(FeedObject, Translatable):
    type = models.CharField(_("type"), max_length=50, help_text=_("e.g. cms, blog, landing"))
    url = models.URLField(_("url"), max_length=1000)
    title = models.CharField(_("title"), max_length=500)
    text = models.TextField(_("text"))
    image = models.URLField(_("image"), max_length=1000, blank=True)
    attributes = FastJSONField(
        _("extra attributes"),
        default=dict,
        blank=True,
        validators=[validate_attributes],
    )

    class Meta:
        verbose_name = _("page")
        verbose_name_plural = _("pages")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class Customer(EmailKeyed, FeedObject):
    name = models.CharField(_("name"), max_length=255, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True, db_index=True)
    # `email_key(email)`, kept by every write that sets `email` (`save()`, the importer, erasure).
    email_key = models.CharField(_("email key"), max_length=EMAIL_KEY_LENGTH, blank=True, editable=False)
    zip = models.CharField(_("zip"), max_length=20, blank=True)
    gender = models.CharField(_("gender"), max_length=20, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    age = models.PositiveSmallIntegerField(_("age"), null=True, blank=True)
    is_b2b = models.BooleanField(_("business customer"), null=True, blank=True)
    registered_at = models.DateTimeField(_("registered at"), null=True, blank=True)
    terms_accepted_at = models.DateTimeField(
        _("terms accepted at"),
        null=True,
        blank=True,
        help_text=_("When the customer accepted the shop's terms (the contract)."),
    )
    # Set by erasure: the row stays (orders point at it) but holds nothing that identifies the
    # person, and no feed shows it again whatever the ledger says.
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["id"]
        indexes = [
            # Erasure by email finds every customer with the key.
            models.Index(fields=["email_key"], name="customer_email_key"),
        ]

    def __str__(self) -> str:
        return f"{self.name or _('customer')} ({self.pk})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "email" in update_fields:
            record_emails([(self.pk, self.email)])


class CustomerEmail(models.Model):
    """Every email a customer has had, in each spelling: an objection or an erasure follows the
    person to the guest orders placed with any of them (`gdpr.policy.guest_of_an_objector`).

    Personal data: erasure deletes the person's rows (after erasing every order they cover).
    """

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="email_history"
    )
    email = models.EmailField(_("email"), max_length=254)
    email_key = models.CharField(_("email key"), max_length=EMAIL_KEY_LENGTH)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)

    class Meta:
        verbose_name = _("customer email")
        verbose_name_plural = _("customer emails")
        constraints = [
            models.UniqueConstraint(fields=["customer", "email"], name="unique_customer_email"),
        ]
        indexes = [
            # Per guest order, the seek for the customers who have had its key.
            models.Index(fields=["email_key", "customer"], name="customer_email_history_key"),
        ]

    def __str__(self) -> str:
        return _("email %(number)s of customer %(customer)s") % {"number": self.pk, "customer": self.customer_id}


def record_emails(pairs: list[tuple[int, str]], *, at=None) -> None:
    """Add (customer id, email) to the customers' email history; blanks and known ones are skipped."""
    rows = [
        CustomerEmail(customer_id=pk, email=email, email_key=email_key(email), first_seen=at or timezone.now())
        for pk, email in pairs
        if email_key(email)
    ]
    if rows:
        CustomerEmail.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)


class Order(EmailKeyed, FeedObject):
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        help_text=_("Empty for a guest order."),
    )
    email = models.EmailField(_("email"), max_length=254, blank=True, db_index=True)
    email_key = models.CharField(_("email key"), max_length=EMAIL_KEY_LENGTH, blank=True, editable=False)
    placed_at = models.DateTimeField(_("placed at"))
    terms_accepted_at = models.DateTimeField(_("terms accepted at checkout"), null=True, blank=True)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["id"]
        indexes = [
            # The policy's "last order" per customer and the window on placed_at.
            models.Index(fields=["customer", "placed_at"], name="order_customer_placed"),
            models.Index(fields=["placed_at"], name="order_placed"),
            # The orders of an email, in any case: every one for erasure by email, the guest ones
            # whose eligibility follows a customer's objection (gdpr.membership). One index for
            # both (not a partial one for guests): few orders share a key, and a write keeps one.
            models.Index(fields=["email_key"], name="order_email_key"),
        ]


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # Not a foreign key: an order keeps the id of a product the shop has since deleted, and
    # Clerk learns from that history (see README, "Data in").
    product_id = models.BigIntegerField(_("product id"), db_index=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = ExactPriceField(_("unit price"), max_digits=18, decimal_places=4)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order_id", "id"]

    def __str__(self) -> str:
        return _("%(quantity)s × product %(product)s") % {"quantity": self.quantity, "product": self.product_id}
