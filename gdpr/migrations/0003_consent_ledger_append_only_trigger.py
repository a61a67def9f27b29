"""On PostgreSQL, make the consent ledger append-only in the database itself.

A trigger refuses every DELETE and every UPDATE of `gdpr_consentrecord`, raw SQL included,
except erasure's redaction (`gdpr.ledger.redact_evidence`): the evidence replaced by the fixed
marker and `redacted_at` set once, every other column unchanged. TRUNCATE is left alone: it is
what `manage.py flush` and test teardown use, never application code.

SQLite gets no trigger (its test teardown deletes rows one by one); there the model and the
queryset refuse changes, as on every backend.
"""

from django.db import migrations

# Frozen copy of gdpr.models.REDACTED_EVIDENCE: changing the marker needs a new migration.
REDACTED_EVIDENCE = "[redacted: right to erasure]"

CREATE = f"""
CREATE OR REPLACE FUNCTION gdpr_consentrecord_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.id = OLD.id
       AND NEW.customer_id = OLD.customer_id
       AND NEW.purpose = OLD.purpose
       AND NEW.granted = OLD.granted
       AND NEW.at = OLD.at
       AND NEW.source = OLD.source
       AND NEW.recorded_by_id IS NOT DISTINCT FROM OLD.recorded_by_id
       AND NEW.recorded_at = OLD.recorded_at
       AND OLD.redacted_at IS NULL
       AND NEW.redacted_at IS NOT NULL
       AND NEW.evidence = '{REDACTED_EVIDENCE}'
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'gdpr_consentrecord is append-only (% refused)', TG_OP
        USING HINT = 'Add a new consent record instead.';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER gdpr_consentrecord_append_only
    BEFORE UPDATE OR DELETE ON gdpr_consentrecord
    FOR EACH ROW EXECUTE FUNCTION gdpr_consentrecord_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS gdpr_consentrecord_append_only ON gdpr_consentrecord;
DROP FUNCTION IF EXISTS gdpr_consentrecord_append_only();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("gdpr", "0002_outbox_erasure_redaction")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
